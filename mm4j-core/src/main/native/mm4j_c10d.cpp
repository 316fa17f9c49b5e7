// mm4j's bridge to libtorch's own c10d (TCPStore + ProcessGroupGloo) inside the libtorch that DJL has already
// loaded. Built without libtorch headers and without libtorch itself (see build-c10d.sh): the functions called here
// are libtorch_cpu.so's exported ones, resolved at load time by SONAME against DJL's copy, so the process maps one
// libtorch. Java (dev.mm4j.train.dist.C10d) loads it only for distributed training, after checking that DJL's engine
// is PyTorch 2.7.1, the one version whose declarations are written out below.
//
// Declarations: only what is called or filled here, as in PyTorch v2.7.1 (c10/util/intrusive_ptr.h,
// torch/csrc/distributed/c10d/{TCPStore,Backend,ProcessGroupGloo,Types,Work}.hpp, ATen's TensorBase.h). The one
// object whose fields are written (ProcessGroupGloo::Options) is checked field by field against what libtorch's own
// constructor stored before it is used (checkOptionsLayout); a mismatch is an error, never a silent corruption.
//
// Ownership: every c10d object made here is held by a real reference count (Ref<T>, the same increments and
// releases as c10::intrusive_ptr); the Java side owns one Group (store + process group) and each pending Work, and
// frees each exactly once (close()).
#include <jni.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#define MM4J_HIDDEN __attribute__((visibility("hidden")))
#define MM4J_EXTERN __attribute__((visibility("default")))

namespace c10 {
// c10/util/intrusive_ptr.h (2.7.1): vptr, then two 32-bit counts; the virtual destructor and release_resources are
// the first two virtual functions. Only ever reached through objects libtorch constructed (their own vtables).
class MM4J_EXTERN intrusive_ptr_target {
 public:
  mutable std::atomic<std::uint32_t> refcount_;
  mutable std::atomic<std::uint32_t> weakcount_;
  virtual ~intrusive_ptr_target();
  virtual void release_resources();
};
namespace detail {
template <class T> struct intrusive_target_default_null_type;
}
// Same name, size and ABI as c10::intrusive_ptr (one pointer; non-trivial, so passed by invisible reference), with
// c10's own counting: copy = increment, destroy = c10's reset_() (strong release, then weak, then delete).
template <class T, class N = detail::intrusive_target_default_null_type<T>>
class MM4J_HIDDEN intrusive_ptr {
 public:
  T* target_ = nullptr;
  intrusive_ptr() = default;
  /** Adopts a fresh object (as make_intrusive: both counts set to 1). */
  static intrusive_ptr adopt(T* fresh) {
    intrusive_ptr p;
    p.target_ = fresh;
    fresh->refcount_.store(1, std::memory_order_relaxed);
    fresh->weakcount_.store(1, std::memory_order_relaxed);
    return p;
  }
  intrusive_ptr(const intrusive_ptr& o) : target_(o.target_) {
    if (target_) target_->refcount_.fetch_add(1, std::memory_order_acq_rel);
  }
  intrusive_ptr(intrusive_ptr&& o) noexcept : target_(o.target_) { o.target_ = nullptr; }
  intrusive_ptr& operator=(intrusive_ptr o) noexcept {
    std::swap(target_, o.target_);
    return *this;
  }
  ~intrusive_ptr() { reset(); }
  void reset() noexcept {
    T* t = target_;
    target_ = nullptr;
    if (t == nullptr || t->refcount_.fetch_sub(1, std::memory_order_acq_rel) - 1 != 0) return;
    bool del = t->weakcount_.load(std::memory_order_acquire) == 1;
    if (!del) {
      static_cast<intrusive_ptr_target*>(t)->release_resources();
      del = t->weakcount_.fetch_sub(1, std::memory_order_acq_rel) - 1 == 0;
    }
    if (del) delete static_cast<intrusive_ptr_target*>(t);
  }
  T* get() const { return target_; }
};
}  // namespace c10

namespace at {
class TensorImpl;
// ATen's Tensor is one c10::intrusive_ptr<TensorImpl, UndefinedTensorImpl>; DJL's array handle is an at::Tensor*.
// Copies made here only ever point at DJL's defined tensors, so the plain count above is c10's behaviour.
class MM4J_HIDDEN Tensor {
 public:
  c10::intrusive_ptr_target* impl_;
  explicit Tensor(const Tensor* djl) : impl_(djl->impl_) { impl_->refcount_.fetch_add(1, std::memory_order_acq_rel); }
  Tensor(const Tensor& o) : impl_(o.impl_) { impl_->refcount_.fetch_add(1, std::memory_order_acq_rel); }
  Tensor& operator=(const Tensor&) = delete;
  ~Tensor() {
    // DJL holds its own reference for as long as the Java array lives, so this never releases the last one
    impl_->refcount_.fetch_sub(1, std::memory_order_acq_rel);
  }
};
}  // namespace at

namespace gloo { namespace transport { class Device; } }

namespace c10d {
class MM4J_EXTERN Store : public c10::intrusive_ptr_target {};
struct TCPStoreOptions {  // TCPStore.hpp (2.7.1); std types only
  std::uint16_t port = 29500;
  bool isServer = false;
  std::optional<std::size_t> numWorkers = std::nullopt;
  bool waitWorkers = true;
  std::chrono::milliseconds timeout = std::chrono::milliseconds(300000);
  bool multiTenant = false;
  std::optional<int> masterListenFd = std::nullopt;
  bool useLibUV = true;
};
class MM4J_EXTERN TCPStore : public Store {
 public:
  TCPStore(std::string host, const TCPStoreOptions& opts);
  ~TCPStore() override;
 private:
  alignas(16) unsigned char opaque_[4096];  // room only: never read or written here (the real object is smaller)
};
class MM4J_EXTERN Work : public c10::intrusive_ptr_target {
 public:
  bool wait(std::chrono::milliseconds timeout);  // non-virtual in libtorch's use for Gloo's allreduce work
};
// ReduceOp (Types.hpp): a CustomClassHolder (vptr and the two counts), the op (SUM = 0) and an optional supplement.
// libtorch only reads op_ and copies it (its copy constructor sets its own vtable), so none is set here.
struct ReduceOp {
  const void* vptr_ = nullptr;
  std::uint32_t refcount_ = 0;
  std::uint32_t weakcount_ = 0;
  std::uint8_t op_ = 0;
  void* supplement_ = nullptr;
};
struct AllreduceOptions {  // Types.hpp (2.7.1)
  ReduceOp reduceOp;
  std::chrono::milliseconds timeout = std::chrono::milliseconds(-1);  // kUnsetTimeout: the group's timeout
  std::optional<at::Tensor> sparseIndices = std::nullopt;
};
class MM4J_EXTERN Backend : public c10::intrusive_ptr_target {
 public:
  struct MM4J_EXTERN Options : public c10::intrusive_ptr_target {
    std::chrono::milliseconds timeout;
    const std::string backend;
  };
};
class MM4J_EXTERN ProcessGroupGloo : public Backend {
 public:
  struct MM4J_EXTERN Options : public Backend::Options {
    explicit Options(std::chrono::milliseconds timeout);
    std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
    int threads;
  };
  static std::shared_ptr<::gloo::transport::Device> createDeviceForHostname(const std::string& hostname);
  ProcessGroupGloo(const c10::intrusive_ptr<Store>& store, int rank, int size, c10::intrusive_ptr<Options> options);
  ~ProcessGroupGloo() override;
  c10::intrusive_ptr<Work> allreduce(std::vector<at::Tensor>& tensors, const AllreduceOptions& opts);
 private:
  alignas(16) unsigned char opaque_[4096];  // room only (the real object is 0x1c8 bytes in 2.7.1)
};
}  // namespace c10d

namespace {

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::chrono::milliseconds timeout;
};

struct Pending {
  c10::intrusive_ptr<c10d::Work> work;
};

void throwJava(JNIEnv* env, const char* what) {
  jclass c = env->FindClass("java/lang/IllegalStateException");
  if (c != nullptr) env->ThrowNew(c, what);
}

std::string utf(JNIEnv* env, jstring s) {
  const char* c = env->GetStringUTFChars(s, nullptr);
  std::string out(c);
  env->ReleaseStringUTFChars(s, c);
  return out;
}

/**
 * Rank 0's store socket, bound to the master address only (TCPStore's own server would listen on every interface):
 * handed to TCPStore as masterListenFd, which then owns it.
 */
int listenOn(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) throw std::runtime_error("cannot resolve the master address " + host + ": " + gai_strerror(rc));
  std::string error = "no address";
  int fd = -1;
  for (addrinfo* a = res; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 2048) != 0) {
      error = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) throw std::runtime_error("cannot listen on " + host + ":" + service + " for the rendezvous: " + error);
  return fd;
}

/** The fields written below are where libtorch's own constructor put its values, or the declarations are wrong. */
void checkOptionsLayout(const c10d::ProcessGroupGloo::Options* o, std::chrono::milliseconds timeout) {
  if (o->timeout != timeout || o->backend != "gloo" || !o->devices.empty() || o->threads != 2) {
    throw std::runtime_error(
        "ProcessGroupGloo::Options does not have the layout of libtorch 2.7.1 (its constructor's values are not "
        "where mm4j_c10d expects them): this native part does not match the loaded libtorch");
  }
}

}  // namespace

extern "C" {

/** @return a Group* (store + process group) owned by the caller, freed by closeGroup. */
JNIEXPORT jlong JNICALL Java_dev_mm4j_train_dist_C10d_openGroup(JNIEnv* env, jclass, jstring jmaster, jint port,
                                                                 jstring jself, jint rank, jint world,
                                                                 jlong timeoutMs, jint threads) {
  try {
    std::chrono::milliseconds timeout(timeoutMs);
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port);
    so.isServer = rank == 0;
    so.numWorkers = static_cast<std::size_t>(world);
    so.waitWorkers = true;
    so.timeout = timeout;
    so.useLibUV = false;  // DJL's libtorch is built without libuv
    std::string master = utf(env, jmaster);
    if (rank == 0) so.masterListenFd = listenOn(master, port);
    auto group = std::make_unique<Group>();
    group->timeout = timeout;
    group->store = c10::intrusive_ptr<c10d::Store>::adopt(new c10d::TCPStore(master, so));

    auto options = c10::intrusive_ptr<c10d::ProcessGroupGloo::Options>::adopt(
        new c10d::ProcessGroupGloo::Options(timeout));
    checkOptionsLayout(options.get(), timeout);
    options.get()->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(utf(env, jself)));
    options.get()->threads = threads;
    group->pg = c10::intrusive_ptr<c10d::ProcessGroupGloo>::adopt(
        new c10d::ProcessGroupGloo(group->store, rank, world, std::move(options)));
    return reinterpret_cast<jlong>(group.release());
  } catch (const std::exception& e) {
    throwJava(env, e.what());
    return 0;
  }
}

JNIEXPORT void JNICALL Java_dev_mm4j_train_dist_C10d_closeGroup(JNIEnv* env, jclass, jlong g) {
  try {
    delete reinterpret_cast<Group*>(g);  // process group first (declared last), then the store
  } catch (const std::exception& e) {
    throwJava(env, e.what());
  }
}

/** Starts a sum all-reduce of DJL's tensors (at::Tensor* handles), in place. @return a Pending* freed by awaitWork. */
JNIEXPORT jlong JNICALL Java_dev_mm4j_train_dist_C10d_startAllReduceSum(JNIEnv* env, jclass, jlong g,
                                                                         jlongArray handles) {
  try {
    jsize n = env->GetArrayLength(handles);
    std::vector<jlong> hs(static_cast<std::size_t>(n));
    env->GetLongArrayRegion(handles, 0, n, hs.data());
    std::vector<at::Tensor> tensors;
    tensors.reserve(hs.size());
    for (jlong h : hs) tensors.emplace_back(reinterpret_cast<const at::Tensor*>(h));
    c10d::AllreduceOptions opts;
    auto pending = std::make_unique<Pending>();
    pending->work = reinterpret_cast<Group*>(g)->pg.get()->allreduce(tensors, opts);
    return reinterpret_cast<jlong>(pending.release());
  } catch (const std::exception& e) {
    throwJava(env, e.what());
    return 0;
  }
}

/** Waits for a started all-reduce and frees it (also when it failed: then the error is thrown). */
JNIEXPORT void JNICALL Java_dev_mm4j_train_dist_C10d_awaitWork(JNIEnv* env, jclass, jlong p) {
  std::unique_ptr<Pending> pending(reinterpret_cast<Pending*>(p));
  try {
    pending->work.get()->wait(std::chrono::milliseconds(0));  // kNoTimeout: the op itself has the group's timeout
  } catch (const std::exception& e) {
    throwJava(env, e.what());
  }
}

}  // extern "C"
