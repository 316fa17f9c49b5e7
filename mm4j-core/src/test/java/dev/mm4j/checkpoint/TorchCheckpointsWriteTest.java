package dev.mm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TorchCheckpointsWriteTest {
    @TempDir Path tmp;

    @Test
    void roundTripsNamesOrderShapesValuesScalarsAndEmptyTensors() throws IOException {
        Map<String, HostTensor> in = new LinkedHashMap<>();
        in.put("z.last.first", HostTensor.ofFloats(new float[] {1.5f, -2f, Float.NaN, Float.NEGATIVE_INFINITY, 0f, -0f}, 2, 3));
        in.put("scalar", HostTensor.ofFloats(new float[] {42.25f}));
        in.put("empty", HostTensor.ofFloats(new float[0], 0, 4));
        in.put("ids", HostTensor.ofLongs(new long[] {Long.MIN_VALUE, -1, 0, 1L << 40, Long.MAX_VALUE}, 5));
        in.put("long_scalar", HostTensor.ofLongs(new long[] {-7}));
        in.put("rank5", HostTensor.ofFloats(new float[] {1, 2, 3, 4, 5, 6}, 1, 2, 1, 3, 1));
        in.put("big", HostTensor.ofFloats(new float[70_000], 70_000)); // numel needs BININT
        in.put("ünïcode.näme", HostTensor.ofFloats(new float[] {3f}, 1));
        Path p = tmp.resolve("rt.pt");
        TorchCheckpoints.write(p, in);

        try (StateDict sd = TorchCheckpoints.read(p)) {
            assertEquals(new ArrayList<>(in.keySet()), new ArrayList<>(sd.names()));
            for (Map.Entry<String, HostTensor> e : in.entrySet()) {
                HostTensor a = e.getValue(), b = sd.get(e.getKey());
                assertArrayEquals(a.shape(), b.shape(), e.getKey());
                assertEquals(a.dtype(), b.dtype(), e.getKey());
                assertEquals(a.data(), b.data(), e.getKey()); // byte-exact, NaN and -0 included
                assertTrue(b.isZeroCopy(), e.getKey());
            }
            assertArrayEquals(new long[] {}, sd.get("scalar").shape());
            assertArrayEquals(new float[] {42.25f}, sd.get("scalar").toFloatArray());
            assertEquals(0, sd.get("empty").numel());
            assertArrayEquals(new long[] {Long.MIN_VALUE, -1, 0, 1L << 40, Long.MAX_VALUE}, sd.get("ids").toLongArray());
        }
        assertEntriesAligned(p);
    }

    @Test
    void theTinyFixtureReWrittenEqualsTheOriginal() throws IOException {
        for (String name : List.of("flava_classification.pt", "flava_classification_views.pt", "flava_classification_fp16.pt")) {
            Path p = tmp.resolve("re_" + name);
            try (StateDict orig = TorchCheckpoints.read(TorchCheckpointsTest.fixture(name))) {
                TorchCheckpoints.write(p, orig.asMap());
                try (StateDict back = TorchCheckpoints.read(p)) {
                    assertEquals(131, back.size());
                    assertEquals(new ArrayList<>(orig.names()), new ArrayList<>(back.names()));
                    for (String n : orig.names()) {
                        assertArrayEquals(orig.get(n).shape(), back.get(n).shape(), n);
                        assertEquals(orig.get(n).data(), back.get(n).data(), n); // fp16 is written as its float32 values
                        assertEquals(DType.FLOAT32, back.get(n).dtype());
                    }
                }
            }
            assertEntriesAligned(p);
        }
        // and the float32 original re-written has the same bytes per tensor as the reference torch.save file
        try (StateDict a = TorchCheckpoints.read(TorchCheckpointsTest.fixture("flava_classification.pt"));
             StateDict b = TorchCheckpoints.read(tmp.resolve("re_flava_classification_views.pt"))) {
            for (String n : a.names()) assertEquals(a.get(n).data(), b.get(n).data(), n);
        }
    }

    @Test
    void writesNDArraysAsFloatAndLongStorages() throws IOException {
        Path p = tmp.resolve("nd.pt");
        try (NDManager m = NDManager.newBaseManager()) {
            Map<String, NDArray> arrays = new LinkedHashMap<>();
            NDArray w = m.arange(12f).reshape(3, 4);
            arrays.put("w", w);
            arrays.put("wt", w.transpose()); // a non-contiguous view
            arrays.put("half", m.create(new float[] {1.5f, -3f}).toType(DataType.FLOAT16, false));
            arrays.put("ids", m.create(new long[] {3, -4, 5}, new Shape(1, 3)));
            arrays.put("mask", m.create(new boolean[] {true, false}));
            arrays.put("s", m.create(2.5f));
            TorchCheckpoints.writeNDArrays(p, arrays);
            try (StateDict back = TorchCheckpoints.read(p)) {
                assertEquals(List.of("w", "wt", "half", "ids", "mask", "s"), new ArrayList<>(back.names()));
                assertArrayEquals(w.toFloatArray(), back.get("w").toFloatArray(), 0f);
                assertArrayEquals(new long[] {4, 3}, back.get("wt").shape());
                assertArrayEquals(w.transpose().toFloatArray(), back.get("wt").toFloatArray(), 0f);
                assertArrayEquals(new float[] {1.5f, -3f}, back.get("half").toFloatArray(), 0f);
                assertEquals(DType.INT64, back.get("ids").dtype());
                assertArrayEquals(new long[] {3, -4, 5}, back.get("ids").toLongArray());
                assertArrayEquals(new long[] {1, 0}, back.get("mask").toLongArray());
                assertArrayEquals(new long[] {}, back.get("s").shape());
                NDArray again = DjlTensors.toNDArray(back.get("w"), m);
                assertEquals(w, again);
            }
        }
    }

    @Test
    void failedWriteLeavesTheOldFileAndNoTempFile() throws IOException {
        Path p = tmp.resolve("model.pt");
        TorchCheckpoints.write(p, Map.of("old", HostTensor.ofFloats(new float[] {9f}, 1)));
        byte[] before = Files.readAllBytes(p);
        long[] shape = {1000};
        Map<String, HostTensor> in = new LinkedHashMap<>();
        in.put("first", HostTensor.ofFloats(new float[1000], 1000));
        in.put("broken", new HostTensor(DType.FLOAT32, shape, () -> {
            throw new UncheckedIOException(new IOException("disk went away"));
        }, 0, HostTensor.contiguousStrides(shape)));
        IOException e = assertThrows(IOException.class, () -> TorchCheckpoints.write(p, in));
        assertTrue(e.getMessage().contains("'broken'") && e.getMessage().contains("disk went away"), e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(p));
        try (Stream<Path> files = Files.list(tmp)) {
            assertEquals(List.of(p), files.toList(), "no temp file left behind");
        }
    }

    @Test
    void layoutIsWhatTorchWrites() throws IOException {
        Path p = tmp.resolve("layout.pt");
        Map<String, HostTensor> in = new LinkedHashMap<>();
        in.put("a", HostTensor.ofFloats(new float[] {1f}, 1));
        in.put("b", HostTensor.ofLongs(new long[] {2}, 1));
        TorchCheckpoints.write(p, in);
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            ZipIndex z = ZipIndex.open(p, ch);
            assertEquals(List.of("archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/data/1", "archive/version"),
                    new ArrayList<>(z.entries().keySet()));
            for (ZipIndex.Entry e : z.entries().values()) assertEquals(ZipIndex.STORED, e.method(), e.name());
            assertEquals("3\n", ascii(z.bytes(z.get("archive/version"))));
            assertEquals("little", ascii(z.bytes(z.get("archive/byteorder"))));
            String pkl = ascii(z.bytes(z.get("archive/data.pkl")));
            assertTrue(pkl.startsWith("\u0080\u0002ccollections\nOrderedDict\n)R("), pkl);
            assertTrue(pkl.contains("ctorch._utils\n_rebuild_tensor_v2\n"));
            assertTrue(pkl.contains("ctorch\nFloatStorage\n") && pkl.contains("ctorch\nLongStorage\n"));
        }
        // Python's zipfile checks the CRC of what it reads; java.util.zip does too
        try (java.util.zip.ZipFile zf = new java.util.zip.ZipFile(p.toFile())) {
            assertEquals(4, zf.getInputStream(zf.getEntry("archive/data/0")).readAllBytes().length);
            assertEquals(8, zf.getInputStream(zf.getEntry("archive/data/1")).readAllBytes().length);
            assertEquals(5, zf.size());
        }
    }

    @Test
    void pickleEncodesLargeNumelsAndStridesAsPythonDoes() throws IOException {
        long[] shape = {3_000_000_000L, 1, 70_000};
        HostTensor huge = new HostTensor(DType.FLOAT32, shape, () -> {
            throw new AssertionError("data is not needed for the pickle");
        }, 0, HostTensor.contiguousStrides(shape));
        byte[] pkl = TorchZipWriter.pickle(List.of(Map.entry("h", huge)));
        Object top = TorchPickle.load("test", ByteBuffer.wrap(pkl));
        TorchPickle.TensorRef t = (TorchPickle.TensorRef) ((Map<?, ?>) top).get("h");
        assertArrayEquals(shape, t.shape());
        assertArrayEquals(new long[] {70_000, 70_000, 1}, t.stride());
        assertEquals(3_000_000_000L * 70_000, t.storage().numel()); // LONG1
        assertEquals("0", t.storage().key());
        assertEquals(DType.FLOAT32, t.storage().dtype());
    }

    private static String ascii(ByteBuffer b) {
        byte[] a = new byte[b.remaining()];
        b.duplicate().get(a);
        return new String(a, java.nio.charset.StandardCharsets.ISO_8859_1);
    }

    /** Every non-empty entry's data starts at a multiple of 64 (like PyTorch's writer, so it can be mmapped). */
    static void assertEntriesAligned(Path p) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            ZipIndex z = ZipIndex.open(p, ch);
            for (ZipIndex.Entry e : z.entries().values()) {
                assertEquals(0, e.dataOffset() % 64, e.name() + " at " + e.dataOffset());
            }
            ByteBuffer head = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(head, 0);
            assertEquals(0x04034b50, head.getInt(0));
        }
    }
}
