package dev.mm4j.checkpoint;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;

/**
 * Writes the zip layout of {@code torch.save} (PyTorch's {@code PyTorchStreamWriter}): {@code archive/data.pkl}
 * (pickle protocol 2), {@code archive/byteorder}, one {@code archive/data/<key>} per storage and
 * {@code archive/version}; all entries STORED, each entry's data aligned to 64 bytes by an {@code FB} padding
 * extra field in its local header (as PyTorch does), ZIP64 records where sizes or offsets need them.
 *
 * <p>Streaming: each tensor's bytes are fetched, CRC-checked and written one at a time.
 */
final class TorchZipWriter {
    static final String ARCHIVE = "archive";
    static final int ALIGNMENT = 64;
    private static final long U32 = 0xffffffffL;

    private TorchZipWriter() {}

    /** Writes {@code tensors} in map order to {@code out}, storage keys "0", "1", ... */
    static void write(OutputStream rawOut, Map<String, HostTensor> tensors) throws IOException {
        List<Map.Entry<String, HostTensor>> list = new ArrayList<>(tensors.entrySet());
        for (Map.Entry<String, HostTensor> e : list) {
            if (e.getKey() == null) throw new IllegalArgumentException("null tensor name");
            if (e.getValue() == null) throw new IllegalArgumentException("tensor '" + e.getKey() + "' is null");
        }
        Counting out = new Counting(rawOut);
        List<Central> central = new ArrayList<>();
        addEntry(out, central, ARCHIVE + "/data.pkl", ByteBuffer.wrap(pickle(list)));
        addEntry(out, central, ARCHIVE + "/byteorder", ByteBuffer.wrap("little".getBytes(StandardCharsets.US_ASCII)));
        for (int i = 0; i < list.size(); i++) {
            Map.Entry<String, HostTensor> e = list.get(i);
            HostTensor t = e.getValue();
            ByteBuffer data;
            try {
                data = t.data();
            } catch (UncheckedIOException ex) {
                throw new IOException("cannot get the data of tensor '" + e.getKey() + "': " + ex.getCause().getMessage(), ex.getCause());
            }
            long expect = t.numel() * t.dataType().size();
            if (data.remaining() != expect)
                throw new IOException("tensor '" + e.getKey() + "' gave " + data.remaining() + " bytes, expected " + expect);
            addEntry(out, central, ARCHIVE + "/data/" + i, data);
        }
        addEntry(out, central, ARCHIVE + "/version", ByteBuffer.wrap("3\n".getBytes(StandardCharsets.US_ASCII)));
        writeCentralDirectory(out, central);
        out.flush();
    }

    // ------------------------------------------------------------------ pickle

    /** The data.pkl of an OrderedDict name -> _rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict()). */
    static byte[] pickle(List<Map.Entry<String, HostTensor>> list) {
        Pickler p = new Pickler();
        p.op(0x80).op(2); // PROTO 2
        p.global("collections", "OrderedDict").op(')').op('R'); // OrderedDict()
        p.op('('); // MARK for SETITEMS
        for (int i = 0; i < list.size(); i++) {
            HostTensor t = list.get(i).getValue();
            long[] shape = t.shape();
            p.str(list.get(i).getKey());
            p.global("torch._utils", "_rebuild_tensor_v2");
            p.op('('); // MARK: the 6 arguments
            p.op('('); // MARK: persistent id tuple
            p.str("storage");
            p.global("torch", t.isFloating() ? "FloatStorage" : "LongStorage");
            p.str(Integer.toString(i));
            p.str("cpu");
            p.integer(t.numel());
            p.op('t'); // TUPLE
            p.op('Q'); // BINPERSID
            p.integer(0); // storage offset
            p.tuple(shape);
            p.tuple(HostTensor.contiguousStrides(shape));
            p.op(0x89); // requires_grad False
            p.global("collections", "OrderedDict").op(')').op('R'); // backward hooks
            p.op('t'); // TUPLE of the arguments
            p.op('R'); // REDUCE
        }
        p.op('u'); // SETITEMS
        p.op('.'); // STOP
        return p.bytes();
    }

    private static final class Pickler {
        private final ByteArrayOutputStream b = new ByteArrayOutputStream();

        Pickler op(int op) {
            b.write(op);
            return this;
        }

        Pickler global(String module, String name) {
            op('c');
            b.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
            return this;
        }

        void str(String s) {
            byte[] u = s.getBytes(StandardCharsets.UTF_8);
            op('X');
            int n = u.length;
            b.write(n);
            b.write(n >>> 8);
            b.write(n >>> 16);
            b.write(n >>> 24);
            b.writeBytes(u);
        }

        /** Python's choice: BININT1, BININT2, BININT, else LONG1. */
        void integer(long v) {
            if (v >= 0 && v < 256) {
                op('K').op((int) v);
            } else if (v >= 0 && v < 65536) {
                op('M').op((int) v & 0xff).op((int) (v >>> 8) & 0xff);
            } else if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) {
                op('J');
                for (int i = 0; i < 4; i++) b.write((int) (v >>> (8 * i)));
            } else {
                // LONG1: little-endian two's complement, minimal length
                byte[] be = java.math.BigInteger.valueOf(v).toByteArray();
                op(0x8a).op(be.length);
                for (int i = be.length - 1; i >= 0; i--) b.write(be[i]);
            }
        }

        void tuple(long[] items) {
            switch (items.length) {
                case 0 -> op(')');
                case 1 -> { integer(items[0]); op(0x85); }
                case 2 -> { integer(items[0]); integer(items[1]); op(0x86); }
                case 3 -> { integer(items[0]); integer(items[1]); integer(items[2]); op(0x87); }
                default -> {
                    op('(');
                    for (long v : items) integer(v);
                    op('t');
                }
            }
        }

        byte[] bytes() { return b.toByteArray(); }
    }

    // ------------------------------------------------------------------ zip

    private record Central(byte[] name, long crc, long size, long localOffset) {}

    private static final class Counting extends OutputStream {
        private final OutputStream out;
        long count;

        Counting(OutputStream out) { this.out = out; }

        @Override public void write(int b) throws IOException { out.write(b); count++; }

        @Override public void write(byte[] b, int off, int len) throws IOException { out.write(b, off, len); count += len; }

        @Override public void flush() throws IOException { out.flush(); }
    }

    private static void addEntry(Counting out, List<Central> central, String name, ByteBuffer data) throws IOException {
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        long size = data.remaining();
        long offset = out.count;
        CRC32 crc = new CRC32();
        crc.update(data.duplicate());
        boolean zip64 = size >= U32;
        // PyTorch's getPadding(): data starts after the 30-byte header, the name, the ZIP64 extra (if any) and
        // the 4-byte header of the FB extra field, then FB padding up to the next multiple of 64.
        long start = offset + 30 + nameBytes.length + (zip64 ? 4 + 16 : 0) + 4;
        int padding = (int) ((ALIGNMENT - start % ALIGNMENT) % ALIGNMENT);
        int extraLen = (zip64 ? 4 + 16 : 0) + 4 + padding;
        ByteBuffer h = ByteBuffer.allocate(30 + nameBytes.length + extraLen).order(ByteOrder.LITTLE_ENDIAN);
        h.putInt(0x04034b50);
        h.putShort((short) (zip64 ? 45 : 20)); // version needed
        h.putShort((short) 0x0800); // flags: UTF-8 names
        h.putShort((short) ZipIndex.STORED);
        h.putShort((short) 0); // time 00:00
        h.putShort((short) 0x21); // date 1980-01-01
        h.putInt((int) crc.getValue());
        h.putInt((int) (zip64 ? U32 : size));
        h.putInt((int) (zip64 ? U32 : size));
        h.putShort((short) nameBytes.length);
        h.putShort((short) extraLen);
        h.put(nameBytes);
        if (zip64) {
            h.putShort((short) 0x0001).putShort((short) 16).putLong(size).putLong(size);
        }
        h.put((byte) 'F').put((byte) 'B').putShort((short) padding);
        for (int i = 0; i < padding; i++) h.put((byte) 'Z');
        out.write(h.array());
        if (out.count % ALIGNMENT != 0 && size > 0) throw new IllegalStateException("misaligned entry " + name);
        DjlTensors.writeBuffer(out, data);
        central.add(new Central(nameBytes, crc.getValue(), size, offset));
    }

    private static void writeCentralDirectory(Counting out, List<Central> central) throws IOException {
        long cdStart = out.count;
        for (Central c : central) {
            boolean bigSize = c.size() >= U32, bigOffset = c.localOffset() >= U32;
            int z64Len = (bigSize ? 16 : 0) + (bigOffset ? 8 : 0);
            int extraLen = z64Len > 0 ? 4 + z64Len : 0;
            ByteBuffer h = ByteBuffer.allocate(46 + c.name().length + extraLen).order(ByteOrder.LITTLE_ENDIAN);
            h.putInt(0x02014b50);
            h.putShort((short) (z64Len > 0 ? 45 : 20)); // version made by (MS-DOS, 2.0 / 4.5)
            h.putShort((short) (z64Len > 0 ? 45 : 20)); // version needed
            h.putShort((short) 0x0800);
            h.putShort((short) ZipIndex.STORED);
            h.putShort((short) 0);
            h.putShort((short) 0x21);
            h.putInt((int) c.crc());
            h.putInt((int) (bigSize ? U32 : c.size()));
            h.putInt((int) (bigSize ? U32 : c.size()));
            h.putShort((short) c.name().length);
            h.putShort((short) extraLen);
            h.putShort((short) 0); // comment
            h.putShort((short) 0); // disk
            h.putShort((short) 0); // internal attributes
            h.putInt(0); // external attributes
            h.putInt((int) (bigOffset ? U32 : c.localOffset()));
            h.put(c.name());
            if (z64Len > 0) {
                h.putShort((short) 0x0001).putShort((short) z64Len);
                if (bigSize) h.putLong(c.size()).putLong(c.size());
                if (bigOffset) h.putLong(c.localOffset());
            }
            out.write(h.array());
        }
        long cdSize = out.count - cdStart;
        long count = central.size();
        boolean zip64 = count >= 0xffff || cdSize >= U32 || cdStart >= U32;
        if (zip64) {
            long eocd64 = out.count;
            ByteBuffer r = ByteBuffer.allocate(56 + 20).order(ByteOrder.LITTLE_ENDIAN);
            r.putInt(0x06064b50).putLong(44).putShort((short) 45).putShort((short) 45).putInt(0).putInt(0)
                    .putLong(count).putLong(count).putLong(cdSize).putLong(cdStart);
            r.putInt(0x07064b50).putInt(0).putLong(eocd64).putInt(1); // locator
            out.write(r.array());
        }
        ByteBuffer e = ByteBuffer.allocate(22).order(ByteOrder.LITTLE_ENDIAN);
        e.putInt(0x06054b50).putShort((short) 0).putShort((short) 0);
        e.putShort((short) (zip64 ? 0xffff : count)).putShort((short) (zip64 ? 0xffff : count));
        e.putInt((int) (zip64 ? U32 : cdSize)).putInt((int) (zip64 ? U32 : cdStart));
        e.putShort((short) 0);
        out.write(e.array());
    }
}
