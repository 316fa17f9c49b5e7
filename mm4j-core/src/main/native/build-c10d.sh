#!/usr/bin/env bash
# Builds libmm4j_c10d.so for this machine (Linux x86-64 or aarch64) into $1/native/linux-<arch>/ with g++ and the JDK's
# jni.h only: no libtorch at build time. libtorch_cpu.so is named as a dependency through an empty stub with the same
# SONAME, so at run time the loader binds it to the copy DJL has already loaded (one libtorch in the process).
set -euo pipefail
# --if-supported: on another OS or CPU skip (the build goes on; distributed training then says it is unsupported)
if_supported=false
if [ "${1:-}" = "--if-supported" ]; then if_supported=true; shift; fi
out="${1:?usage: build-c10d.sh [--if-supported] <output-dir>}"
here="$(cd "$(dirname "$0")" && pwd)"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) platform=linux-x86_64 ;;
  Linux-aarch64) platform=linux-aarch64 ;;
  *) if $if_supported; then echo "mm4j_c10d: skipped on $(uname -s) $(uname -m) (Linux x86-64 and aarch64 only)"; exit 0; fi
     echo "mm4j_c10d: distributed training's native part builds on Linux x86-64 and aarch64 only, not on $(uname -s) $(uname -m)" >&2; exit 1 ;;
esac
cxx="${CXX:-g++}"
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "mm4j_c10d: no C++ compiler ($cxx): install g++ (Debian: apt-get install g++) to build distributed training's native part" >&2
  exit 1
fi
java_home="${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}"
if [ ! -f "$java_home/include/jni.h" ]; then
  echo "mm4j_c10d: no jni.h under $java_home/include (set JAVA_HOME to a JDK)" >&2
  exit 1
fi
target="$out/native/$platform/libmm4j_c10d.so"
if [ -f "$target" ] && [ "$target" -nt "$here/mm4j_c10d.cpp" ] && [ "$target" -nt "$0" ]; then
  echo "mm4j_c10d: $target is up to date"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/stub" "$out/native/$platform"
echo > "$work/stub/empty.c"
gcc -shared -fPIC -Wl,-soname,libtorch_cpu.so -o "$work/stub/libtorch_cpu.so" "$work/stub/empty.c"
"$cxx" -std=c++17 -O2 -fPIC -shared -D_GLIBCXX_USE_CXX11_ABI=1 \
  -fvisibility=hidden -fvisibility-inlines-hidden -Wall -Wextra -Wno-unused-parameter \
  -I"$java_home/include" -I"$java_home/include/linux" \
  "$here/mm4j_c10d.cpp" -o "$work/libmm4j_c10d.so" \
  -Wl,-Bsymbolic -Wl,--no-as-needed -L"$work/stub" -ltorch_cpu -Wl,--no-undefined-version -Wl,-z,now
mv "$work/libmm4j_c10d.so" "$out/native/$platform/libmm4j_c10d.so"
echo "mm4j_c10d: built $out/native/$platform/libmm4j_c10d.so"
