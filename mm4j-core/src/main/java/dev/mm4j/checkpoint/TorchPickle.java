package dev.mm4j.checkpoint;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A restricted unpickler for the {@code data.pkl} of a {@code torch.save} zip archive (or a legacy file's pickles).
 * It implements only the opcodes torch writes for state dicts and builds only an allow-list of globals; it never
 * calls anything. Any other global or opcode is a {@link CheckpointException} naming it and the file.
 *
 * <p>Values: {@code null} (None), Boolean, Long, Double, String, {@link List} (list), {@link Tuple},
 * {@link LinkedHashMap} (dict / OrderedDict), {@link StorageRef}, {@link TensorRef}.
 */
final class TorchPickle {

    /** An immutable pickle tuple. */
    record Tuple(List<Object> items) {
        int size() { return items.size(); }
        Object get(int i) { return items.get(i); }
    }

    /** An allow-listed global, only ever used as a callable by REDUCE or inside a persistent id. */
    record Global(String module, String name) {
        @Override public String toString() { return module + "." + name; }
    }

    /** A persistent id {@code ('storage', torch.XxxStorage, key, location, numel)}. */
    record StorageRef(DType dtype, String key, String location, long numel) {}

    /** The result of {@code _rebuild_tensor_v2} (or {@code _v3}): a view into a storage. */
    record TensorRef(StorageRef storage, long offset, long[] shape, long[] stride) {}

    /** A {@code _rebuild_tensor_v3} tensor of a dtype we do not read ({@code dtype}: PyTorch's name): an error if loaded. */
    record UnreadableTensor(String dtype) {}

    /** {@code torch.storage.UntypedStorage}: the storage of {@code _rebuild_tensor_v3}, its numel counted in bytes. */
    private static final String UNTYPED_STORAGE = "torch.storage.UntypedStorage";

    /**
     * PyTorch dtypes we do not read but name in an error ({@code _rebuild_tensor_v3}'s dtype argument), beside
     * {@link DType}'s.
     */
    private static final Set<String> OTHER_TORCH_DTYPES = Set.of("float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu",
            "float4_e2m1fn_x2", "complex32", "complex64", "complex128", "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
            "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16", "uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7",
            "int1", "int2", "int3", "int4", "int5", "int6", "int7");

    private static final Set<String> ALLOWED = Set.of(
            "collections.OrderedDict",
            "torch._utils._rebuild_tensor_v2",
            "torch._utils._rebuild_tensor_v3",
            "torch._utils._rebuild_parameter",
            UNTYPED_STORAGE,
            "torch.device",
            "torch.Size",
            // what else torch.load(weights_only=True) accepts by default (PyTorch 2.14's _get_allowed_globals), built
            // here as inert values: tensors with Python attributes, parameters with state, and the plain data types
            // training scripts keep beside a state dict
            "torch._tensor._rebuild_from_type_v2",
            "torch._utils._rebuild_parameter_with_state",
            "torch.Tensor",
            "torch.nn.parameter.Parameter",
            "collections.Counter",
            "builtins.set",
            "builtins.bytearray",
            "builtins.complex",
            "_codecs.encode");

    /**
     * Operations one pickle may run. Each makes at most one small object, so this bounds the heap a hostile
     * pickle can take (a few hundred MB) far below what its size allows (a 512 MB data.pkl of empty dicts
     * would be tens of GB); a state dict takes about 30 per tensor, so even 100,000 tensors stay far below.
     */
    static final int MAX_OPERATIONS = 5_000_000;

    private final String file;
    private final ByteBuffer in;
    private final List<Object> stack = new ArrayList<>();
    private final Deque<List<Object>> metastack = new ArrayDeque<>();
    private final Map<Long, Object> memo = new HashMap<>();
    private List<Object> current = stack;
    /** The storages of the persistent ids met, in order. */
    private final List<StorageRef> storages = new ArrayList<>();

    private TorchPickle(String file, ByteBuffer pickle) {
        this.file = file;
        this.in = pickle.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Unpickles {@code pickle}; {@code file} names the source in error messages. */
    static Object load(String file, ByteBuffer pickle) throws CheckpointException {
        return new TorchPickle(file, pickle).run();
    }

    /**
     * One pickle read from the start of a buffer that may hold more after it: its value, its length in bytes and
     * the storages its persistent ids declare (in the order met).
     */
    record Prefix(Object value, int length, List<StorageRef> storages) {}

    /**
     * Unpickles the pickle at the start of {@code bytes} (from its position), which may be followed by other data: a
     * legacy {@code torch.save} file is several pickles in a row, then the storages.
     */
    static Prefix loadPrefix(String file, ByteBuffer bytes) throws CheckpointException {
        TorchPickle p = new TorchPickle(file, bytes);
        int start = p.in.position();
        Object v = p.run();
        return new Prefix(v, p.in.position() - start, List.copyOf(p.storages));
    }

    private CheckpointException bad(String what) {
        return new CheckpointException(file + ": " + what + " (pickle offset " + in.position() + ")");
    }

    private Object run() throws CheckpointException {
        for (int ops = 1; ; ops++) {
            if (!in.hasRemaining()) throw bad("pickle ends without STOP (truncated?)");
            if (ops > MAX_OPERATIONS) {
                throw bad("more than " + MAX_OPERATIONS + " pickle operations, far more than a state dict needs; refused");
            }
            int at = in.position();
            int op = in.get() & 0xff;
            switch (op) {
                case 0x80 -> { // PROTO
                    int v = u8();
                    if (v > 5) throw bad("unsupported pickle protocol " + v);
                }
                case 0x95 -> i64(); // FRAME: a length hint only
                case '}' -> push(new LinkedHashMap<Object, Object>()); // EMPTY_DICT
                case ']' -> push(new ArrayList<Object>()); // EMPTY_LIST
                case ')' -> push(new Tuple(List.of())); // EMPTY_TUPLE
                case '(' -> { // MARK
                    metastack.push(current);
                    current = new ArrayList<>();
                }
                case 'X' -> push(string(u32())); // BINUNICODE
                case 0x8c -> push(string(u8())); // SHORT_BINUNICODE
                case 0x8d -> push(string(i64())); // BINUNICODE8
                case 'J' -> { need(4); push((long) in.getInt()); } // BININT
                case 'K' -> push((long) u8()); // BININT1
                case 'M' -> { need(2); push((long) (in.getShort() & 0xffff)); } // BININT2
                case 0x8a -> push(long1()); // LONG1
                case 'G' -> push(Double.longBitsToDouble(Long.reverseBytes(i64()))); // BINFLOAT (big-endian)
                case 0x88 -> push(Boolean.TRUE); // NEWTRUE
                case 0x89 -> push(Boolean.FALSE); // NEWFALSE
                case 'N' -> push(null); // NONE
                case 't' -> push(new Tuple(java.util.Collections.unmodifiableList(new ArrayList<>(popMark())))); // TUPLE
                case 0x85 -> { Object a = pop(); push(tuple(a)); } // TUPLE1
                case 0x86 -> { Object b = pop(), a = pop(); push(tuple(a, b)); } // TUPLE2
                case 0x87 -> { Object c = pop(), b = pop(), a = pop(); push(tuple(a, b, c)); } // TUPLE3
                case 'c' -> push(global(line(), line())); // GLOBAL
                case 0x93 -> { // STACK_GLOBAL
                    Object name = pop(), module = pop();
                    if (!(module instanceof String m) || !(name instanceof String n)) throw bad("STACK_GLOBAL needs two strings");
                    push(global(m, n));
                }
                case 'q' -> memo.put((long) u8(), top()); // BINPUT
                case 'r' -> memo.put(u32(), top()); // LONG_BINPUT
                case 0x94 -> memo.put((long) memo.size(), top()); // MEMOIZE
                case 'h' -> push(memoGet(u8())); // BINGET
                case 'j' -> push(memoGet(u32())); // LONG_BINGET
                case 's' -> { Object v = pop(), k = pop(); dict(top()).put(key(k), v); } // SETITEM
                case 'u' -> { // SETITEMS
                    List<Object> items = popMark();
                    if (items.size() % 2 != 0) throw bad("SETITEMS with an odd number of items");
                    Map<Object, Object> d = dict(top());
                    for (int i = 0; i < items.size(); i += 2) d.put(key(items.get(i)), items.get(i + 1));
                }
                case 'a' -> { Object v = pop(); list(top()).add(v); } // APPEND
                case 'e' -> { List<Object> items = popMark(); list(top()).addAll(items); } // APPENDS
                case 'R' -> { Object args = pop(), fn = pop(); push(reduce(fn, args)); } // REDUCE
                case 'b' -> { // BUILD: only harmless state on a dict (OrderedDict._metadata) or a tensor
                    Object state = pop();
                    Object target = top();
                    if (!(target instanceof LinkedHashMap) && !(target instanceof TensorRef))
                        throw bad("BUILD on " + typeName(target) + " is not supported");
                    if (state != null && !(state instanceof Map) && !(state instanceof Tuple))
                        throw bad("BUILD with " + typeName(state) + " state is not supported");
                    // the state (e.g. a state dict's _metadata) is ignored
                }
                case 'Q' -> push(persistent(pop())); // BINPERSID
                case '0' -> pop(); // POP
                case '1' -> popMark(); // POP_MARK
                case '.' -> { // STOP
                    if (current != stack || stack.size() != 1) throw bad("pickle stack is malformed at STOP");
                    return stack.get(0);
                }
                default -> {
                    in.position(at);
                    String printable = op >= 0x20 && op < 0x7f ? " ('" + (char) op + "')" : "";
                    throw bad(String.format("unsupported pickle opcode 0x%02x%s", op, printable));
                }
            }
        }
    }

    // ---- stack helpers

    private void push(Object o) { current.add(o); }

    private Object pop() throws CheckpointException {
        if (current.isEmpty()) throw bad("pickle stack underflow");
        return current.remove(current.size() - 1);
    }

    private Object top() throws CheckpointException {
        if (current.isEmpty()) throw bad("pickle stack underflow");
        return current.get(current.size() - 1);
    }

    private List<Object> popMark() throws CheckpointException {
        if (metastack.isEmpty()) throw bad("pickle MARK missing");
        List<Object> items = current;
        current = metastack.pop();
        return items;
    }

    private static Tuple tuple(Object... items) {
        List<Object> l = new ArrayList<>(items.length);
        for (Object o : items) l.add(o);
        return new Tuple(java.util.Collections.unmodifiableList(l));
    }

    private Object memoGet(long key) throws CheckpointException {
        if (!memo.containsKey(key)) throw bad("pickle memo key " + key + " was never stored");
        return memo.get(key);
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> dict(Object o) throws CheckpointException {
        if (o instanceof LinkedHashMap) return (Map<Object, Object>) o;
        throw bad("SETITEM on " + typeName(o) + ", expected a dict");
    }

    @SuppressWarnings("unchecked")
    private List<Object> list(Object o) throws CheckpointException {
        if (o instanceof ArrayList) return (List<Object>) o;
        throw bad("APPEND on " + typeName(o) + ", expected a list");
    }

    /** Dict keys must be plain immutable scalars (no self-referencing containers). */
    private Object key(Object k) throws CheckpointException {
        if (k == null || k instanceof String || k instanceof Long || k instanceof Boolean || k instanceof Double
                || k instanceof BigInteger) return k;
        throw bad("unsupported dict key of type " + typeName(k));
    }

    // ---- readers with bounds checks

    private void need(long n) throws CheckpointException {
        if (n < 0 || n > in.remaining()) throw bad("pickle is truncated: needs " + n + " more bytes, has " + in.remaining());
    }

    private int u8() throws CheckpointException {
        if (!in.hasRemaining()) throw bad("pickle is truncated");
        return in.get() & 0xff;
    }

    private long u32() throws CheckpointException {
        if (in.remaining() < 4) throw bad("pickle is truncated");
        return in.getInt() & 0xffffffffL;
    }

    private long i64() throws CheckpointException {
        if (in.remaining() < 8) throw bad("pickle is truncated");
        return in.getLong();
    }

    private String string(long len) throws CheckpointException {
        if (len < 0 || len > in.remaining()) throw bad("string of " + len + " bytes runs past the end of the pickle");
        byte[] b = new byte[(int) len];
        in.get(b);
        return new String(b, StandardCharsets.UTF_8);
    }

    private String line() throws CheckpointException {
        StringBuilder sb = new StringBuilder();
        while (true) {
            if (!in.hasRemaining()) throw bad("pickle is truncated inside GLOBAL");
            byte b = in.get();
            if (b == '\n') return sb.toString();
            if (sb.length() > 256) throw bad("GLOBAL name too long");
            sb.append((char) (b & 0xff));
        }
    }

    private Object long1() throws CheckpointException {
        int n = u8();
        if (n > in.remaining()) throw bad("pickle is truncated");
        if (n == 0) return 0L;
        byte[] le = new byte[n];
        in.get(le);
        byte[] be = new byte[n];
        for (int i = 0; i < n; i++) be[i] = le[n - 1 - i];
        BigInteger v = new BigInteger(be);
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    // ---- globals, persistent ids, calls

    private Object global(String module, String name) throws CheckpointException {
        if (module.equals("__builtin__")) module = "builtins"; // protocol 2 names Python 2's module
        String full = module + "." + name;
        if (module.equals("torch") && (DType.ofStorageClass(name) != null || DType.ofTorchName(name) != null
                || OTHER_TORCH_DTYPES.contains(name))) {
            return new Global(module, name);
        }
        if (ALLOWED.contains(full)) return new Global(module, name);
        if (module.startsWith("__torch__")) {
            throw bad("this is a TorchScript archive (torch.jit.save; it names '" + full + "'), not a state dict: save the"
                    + " module's weights with torch.save(module.state_dict(), path)");
        }
        if (!module.startsWith("torch._utils") && !name.isEmpty() && Character.isUpperCase(name.charAt(0))) {
            throw bad("it holds a pickled Python object ('" + full + "'), which mm4j does not build (that would run its"
                    + " code); a whole model saved with torch.save(model) is read once saved as torch.save(model.state_dict(), path)");
        }
        throw bad("forbidden global '" + full + "' (only torch tensor/storage rebuild globals and collections.OrderedDict are allowed)");
    }

    private Object persistent(Object pid) throws CheckpointException {
        // a legacy (pre-1.6) file's ids have a sixth item, view metadata, None since PyTorch 0.4
        if (!(pid instanceof Tuple t) || !(t.size() == 5 || t.size() == 6 && t.get(5) == null) || !"storage".equals(t.get(0)))
            throw bad("unsupported persistent id of type " + typeName(pid) + " (expected ('storage', type, key, location, numel))");
        boolean untyped = t.get(1) instanceof Global u && u.toString().equals(UNTYPED_STORAGE);
        if (!untyped && (!(t.get(1) instanceof Global g) || !g.module().equals("torch") || DType.ofStorageClass(g.name()) == null))
            throw bad("persistent id has no torch storage type");
        if (!(t.get(2) instanceof String key) || !(t.get(3) instanceof String location) || !(t.get(4) instanceof Long numel) || numel < 0)
            throw bad("malformed storage persistent id");
        // an untyped storage counts bytes; _rebuild_tensor_v3 gives it its dtype
        StorageRef s = new StorageRef(untyped ? DType.UINT8 : DType.ofStorageClass(((Global) t.get(1)).name()), key, location, numel);
        storages.add(s);
        return s;
    }

    private Object reduce(Object fn, Object args) throws CheckpointException {
        if (!(fn instanceof Global g)) throw bad("REDUCE on " + typeName(fn) + ", expected an allowed global");
        if (!(args instanceof Tuple a)) throw bad("REDUCE arguments are " + typeName(args) + ", expected a tuple");
        switch (g.toString()) {
            case "collections.OrderedDict" -> {
                if (a.size() != 0) throw bad("OrderedDict with constructor arguments is not supported");
                return new LinkedHashMap<Object, Object>();
            }
            case "torch._utils._rebuild_tensor_v2" -> {
                if (a.size() < 6 || a.size() > 7) throw bad("_rebuild_tensor_v2 with " + a.size() + " arguments");
                if (!(a.get(0) instanceof StorageRef s)) throw bad("_rebuild_tensor_v2 without a storage");
                return view("_rebuild_tensor_v2", s, a);
            }
            case "torch._utils._rebuild_tensor_v3" -> {
                // (storage, offset, size, stride, requires_grad, backward_hooks, dtype[, metadata]): PyTorch 2.3+ for
                // dtypes without a typed storage (uint16/32/64, float8, ...), on an untyped storage of bytes
                if (a.size() < 7 || a.size() > 8) throw bad("_rebuild_tensor_v3 with " + a.size() + " arguments");
                if (!(a.get(6) instanceof Global d) || !d.module().equals("torch")) throw bad("_rebuild_tensor_v3 without a dtype");
                DType dtype = DType.ofTorchName(d.name());
                if (dtype == null) return new UnreadableTensor(d.name());
                if (!(a.get(0) instanceof StorageRef s)) throw bad("_rebuild_tensor_v3 without a storage");
                if (s.dtype() != DType.UINT8 || s.numel() % dtype.size() != 0)
                    throw bad("_rebuild_tensor_v3 of " + dtype + " on a storage of " + s.numel() + " " + s.dtype() + " elements");
                return view("_rebuild_tensor_v3", new StorageRef(dtype, s.key(), s.location(), s.numel() / dtype.size()), a);
            }
            case "torch._utils._rebuild_parameter" -> {
                if (a.size() != 3 || !(a.get(0) instanceof TensorRef || a.get(0) instanceof UnreadableTensor))
                    throw bad("malformed _rebuild_parameter");
                return a.get(0);
            }
            case "torch.device" -> {
                if (a.size() < 1 || !(a.get(0) instanceof String dev)) throw bad("malformed torch.device");
                return a.size() > 1 ? dev + ":" + a.get(1) : dev;
            }
            case "torch.Size" -> {
                if (a.size() != 1 || !(a.get(0) instanceof Tuple)) throw bad("malformed torch.Size");
                return a.get(0);
            }
            case "torch._tensor._rebuild_from_type_v2" -> {
                // (rebuild function, type, its arguments, Python attributes): a tensor or parameter whose attributes
                // (the state) are dropped; a tensor subclass is refused
                if (a.size() != 4 || !(a.get(0) instanceof Global f) || !f.toString().startsWith("torch._utils._rebuild_")
                        || !(a.get(1) instanceof Global type) || !(a.get(2) instanceof Tuple)) {
                    throw bad("malformed _rebuild_from_type_v2");
                }
                if (!type.toString().equals("torch.Tensor") && !type.toString().equals("torch.nn.parameter.Parameter")) {
                    throw bad("a tensor of subclass '" + type + "', which mm4j does not read");
                }
                return reduce(a.get(0), a.get(2));
            }
            case "torch._utils._rebuild_parameter_with_state" -> {
                // (tensor, requires_grad, backward_hooks, Python attributes): the tensor
                if (a.size() != 4 || !(a.get(0) instanceof TensorRef || a.get(0) instanceof UnreadableTensor)) {
                    throw bad("malformed _rebuild_parameter_with_state");
                }
                return a.get(0);
            }
            case "collections.Counter" -> {
                if (a.size() > 1 || a.size() == 1 && !(a.get(0) instanceof Map)) throw bad("malformed Counter");
                return a.size() == 0 ? new LinkedHashMap<Object, Object>() : new LinkedHashMap<Object, Object>((Map<?, ?>) a.get(0));
            }
            case "builtins.set" -> {
                if (a.size() > 1 || a.size() == 1 && !(a.get(0) instanceof List)) throw bad("malformed set");
                return a.size() == 0 ? new ArrayList<Object>() : new ArrayList<Object>((List<?>) a.get(0));
            }
            case "_codecs.encode", "builtins.bytearray" -> {
                // bytes under protocol 2: encode(text, 'latin1'); bytearray(bytes), bytearray(text, 'latin-1') or bytearray()
                if (a.size() == 0 && g.name().equals("bytearray")) return new byte[0];
                if (a.size() == 1 && a.get(0) instanceof byte[] b && g.name().equals("bytearray")) return b;
                if (a.size() != 2 || !(a.get(0) instanceof String text) || !(a.get(1) instanceof String enc)
                        || !enc.replace("-", "").equalsIgnoreCase("latin1")) {
                    throw bad("malformed " + g);
                }
                return text.getBytes(StandardCharsets.ISO_8859_1);
            }
            case "builtins.complex" -> {
                if (a.size() != 2 || !(a.get(0) instanceof Number re) || !(a.get(1) instanceof Number im)) throw bad("malformed complex");
                return new double[] {re.doubleValue(), im.doubleValue()};
            }
            default -> throw bad("global '" + g + "' cannot be called");
        }
    }

    /** The view a rebuild function's arguments (storage, offset, size, stride, ...) describe, on {@code storage}. */
    private TensorRef view(String fn, StorageRef storage, Tuple a) throws CheckpointException {
        if (!(a.get(1) instanceof Long offset)) throw bad(fn + " offset is not an int");
        long[] shape = longs(a.get(2), "size");
        long[] stride = longs(a.get(3), "stride");
        if (shape.length != stride.length) throw bad(fn + " size and stride differ in rank");
        return new TensorRef(storage, offset, shape, stride);
    }

    private long[] longs(Object o, String what) throws CheckpointException {
        if (!(o instanceof Tuple t)) throw bad("tensor " + what + " is " + typeName(o) + ", expected a tuple");
        long[] r = new long[t.size()];
        for (int i = 0; i < r.length; i++) {
            if (!(t.get(i) instanceof Long v)) throw bad("tensor " + what + " holds a non-integer");
            r[i] = v;
        }
        return r;
    }

    static String typeName(Object o) {
        if (o == null) return "None";
        if (o instanceof Tuple) return "tuple";
        if (o instanceof List) return "list";
        if (o instanceof Map) return "dict";
        if (o instanceof Global g) return "global " + g;
        return o.getClass().getSimpleName();
    }
}
