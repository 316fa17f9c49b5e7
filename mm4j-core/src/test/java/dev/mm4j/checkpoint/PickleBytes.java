package dev.mm4j.checkpoint;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/** Test helper: writes pickle opcodes by hand and packs torch-style zip archives. */
final class PickleBytes {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    static PickleBytes proto2() { return new PickleBytes().op(0x80).op(2); }

    PickleBytes op(int b) { out.write(b); return this; }

    PickleBytes raw(byte[] b) { out.writeBytes(b); return this; }

    PickleBytes global(String module, String name) {
        return op('c').raw((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
    }

    PickleBytes str(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        op('X');
        for (int i = 0; i < 4; i++) out.write((b.length >>> (8 * i)) & 0xff);
        return raw(b);
    }

    PickleBytes shortStr(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        return op(0x8c).op(b.length).raw(b);
    }

    PickleBytes integer(long v) {
        if (v >= 0 && v < 256) return op('K').op((int) v);
        if (v >= 0 && v < 65536) return op('M').op((int) (v & 0xff)).op((int) (v >>> 8));
        op('J');
        for (int i = 0; i < 4; i++) out.write((int) (v >>> (8 * i)) & 0xff);
        return this;
    }

    PickleBytes mark() { return op('('); }
    PickleBytes tuple() { return op('t'); }
    PickleBytes emptyTuple() { return op(')'); }
    PickleBytes emptyDict() { return op('}'); }
    PickleBytes reduce() { return op('R'); }
    PickleBytes setitem() { return op('s'); }
    PickleBytes setitems() { return op('u'); }
    PickleBytes stop() { return op('.'); }
    PickleBytes falseVal() { return op(0x89); }
    PickleBytes none() { return op('N'); }

    PickleBytes ints(long... v) {
        mark();
        for (long x : v) integer(x);
        return tuple();
    }

    /** Pushes _rebuild_tensor_v2((storage pid), offset, size, stride, False, OrderedDict()). */
    PickleBytes tensor(String storageClass, String key, String location, long numel, long offset, long[] size, long[] stride) {
        global("torch._utils", "_rebuild_tensor_v2");
        mark();
        mark().str("storage").global("torch", storageClass).str(key).str(location).integer(numel).tuple().op('Q');
        integer(offset).ints(size).ints(stride).falseVal();
        global("collections", "OrderedDict").emptyTuple().reduce();
        tuple();
        return reduce();
    }

    /** A full state-dict pickle: OrderedDict with one float tensor 'w' over storage '0'. */
    static byte[] oneTensor(long numel, long offset, long[] size, long[] stride) {
        return proto2().global("collections", "OrderedDict").emptyTuple().reduce()
                .str("w").tensor("FloatStorage", "0", "cpu", numel, offset, size, stride).setitem().stop().bytes();
    }

    byte[] bytes() { return out.toByteArray(); }

    /** A zip with the given entries (STORED unless deflate), in order. */
    static byte[] zip(Map<String, byte[]> entries, boolean deflate) throws IOException {
        ByteArrayOutputStream bo = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(bo)) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                ZipEntry ze = new ZipEntry(e.getKey());
                if (!deflate) {
                    ze.setMethod(ZipEntry.STORED);
                    ze.setSize(e.getValue().length);
                    CRC32 crc = new CRC32();
                    crc.update(e.getValue());
                    ze.setCrc(crc.getValue());
                }
                z.putNextEntry(ze);
                z.write(e.getValue());
                z.closeEntry();
            }
        }
        return bo.toByteArray();
    }

    static byte[] floatsLE(float... v) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(v.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float f : v) b.putFloat(f);
        return b.array();
    }
}
