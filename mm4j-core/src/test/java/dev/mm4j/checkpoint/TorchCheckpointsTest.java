package dev.mm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TorchCheckpointsTest {
    @TempDir Path tmp;

    static Path fixture(String name) {
        try {
            return Path.of(TorchCheckpointsTest.class.getResource("/fixtures/flava-tiny/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void readsTheClassificationStateDict() throws IOException {
        try (StateDict sd = TorchCheckpoints.read(fixture("flava_classification.pt"))) {
            // 131 entries: Python's len(state_dict) of the file (counted by a restricted pickle.Unpickler);
            // the OrderedDict's _metadata (set by BUILD) is not an entry.
            assertEquals(131, sd.size());
            List<String> names = new ArrayList<>(sd.names());
            assertEquals(List.of("model.image_encoder.embeddings.cls_token", "model.image_encoder.embeddings.position_embeddings",
                    "model.image_encoder.embeddings.mask_token"), names.subList(0, 3));
            assertEquals(List.of("classifier.model.0.bias", "classifier.model.3.weight", "classifier.model.3.bias"),
                    names.subList(128, 131));
            long total = 0;
            for (HostTensor t : sd.asMap().values()) {
                assertEquals(DType.FLOAT32, t.dtype());
                assertTrue(t.isZeroCopy(), "float32 contiguous tensors are handed out without a copy");
                total += t.numel();
            }
            assertEquals(71671, total); // sum of numpy sizes, same throwaway script

            HostTensor cls = sd.get("model.image_encoder.embeddings.cls_token");
            assertArrayEquals(new long[] {1, 1, 32}, cls.shape());
            // Expected values: numpy.frombuffer(zipfile.read('<archive>/data/<key>'), '<f4') with the key, offset and
            // strides taken from the pickle (throwaway Python script, not committed).
            float[] c = cls.toFloatArray();
            assertEquals(-0.11892016977071762f, c[0]);
            assertEquals(0.10956831276416779f, c[5]);
            assertEquals(0.12106316536664963f, c[31]);

            HostTensor w = sd.get("classifier.model.3.weight");
            assertArrayEquals(new long[] {7, 32}, w.shape());
            float[] wv = w.toFloatArray();
            assertEquals(-0.005324236117303371f, wv[0]);
            assertEquals(0.010629472322762012f, wv[3 * 32 + 17]);
            assertEquals(0.052423834800720215f, wv[6 * 32 + 31]);
            assertEquals(ByteOrder.LITTLE_ENDIAN, w.data().order());
            assertEquals(7 * 32 * 4, w.data().remaining());
        }
    }

    @Test
    void viewsAndColumnMajorTensorsEqualTheContiguousFile() throws IOException {
        try (StateDict a = TorchCheckpoints.read(fixture("flava_classification.pt"));
             StateDict v = TorchCheckpoints.read(fixture("flava_classification_views.pt"))) {
            assertEquals(new ArrayList<>(a.names()), new ArrayList<>(v.names()));
            for (String n : a.names()) {
                assertArrayEquals(a.get(n).shape(), v.get(n).shape(), n);
                assertArrayEquals(a.get(n).toFloatArray(), v.get(n).toFloatArray(), 0f, n);
            }
            // the column-major one (stride (1, 64)) really went through the gather path
            HostTensor ff = v.get("model.mm_encoder.encoder.layer.0.feedforward.model.0.weight");
            assertFalse(ff.isZeroCopy());
            float[] f = ff.toFloatArray();
            assertEquals(-0.05830180644989014f, f[1 * 32 + 0]);
            assertEquals(-0.1628999561071396f, f[10 * 32 + 3]);
            assertEquals(0.09279697388410568f, f[63 * 32 + 31]);
            // a view at offset 2048 of a shared storage, still zero-copy
            HostTensor val = v.get("model.mm_encoder.encoder.layer.0.attention.value.weight");
            assertTrue(val.isZeroCopy());
            assertEquals(0.06313870847225189f, val.toFloatArray()[5 * 32 + 7]);
        }
    }

    @Test
    void fp16FileLoadsAsFloat32WithinHalfRounding() throws IOException {
        try (StateDict a = TorchCheckpoints.read(fixture("flava_classification.pt"));
             StateDict h = TorchCheckpoints.read(fixture("flava_classification_fp16.pt"))) {
            assertEquals(a.size(), h.size());
            double worst = 0;
            for (String n : a.names()) {
                HostTensor t = h.get(n);
                assertEquals(DType.FLOAT16, t.dtype());
                assertEquals(DType.FLOAT32, t.dataType());
                float[] x = a.get(n).toFloatArray(), y = t.toFloatArray();
                assertEquals(x.length, y.length);
                for (int i = 0; i < x.length; i++) {
                    double err = Math.abs(x[i] - y[i]);
                    assertTrue(err <= 1e-3 * Math.abs(x[i]) + 1e-7, n + "[" + i + "] " + x[i] + " vs " + y[i]);
                    worst = Math.max(worst, err / Math.max(Math.abs(x[i]), 1e-3));
                }
            }
            assertTrue(worst > 0, "fp16 values must differ somewhere, or this test checks nothing");
        }
    }

    @Test
    void pretrainingLayoutHasItsExtraKeys() throws IOException {
        try (StateDict p = TorchCheckpoints.read(fixture("flava_pretraining_layout.pt"))) {
            assertEquals(130, p.size());
            assertTrue(p.contains("loss.mlm_loss.cls.predictions.decoder.weight"));
            assertTrue(p.contains("image_codebook.encoder.blocks.input.w"));
            assertFalse(p.names().stream().anyMatch(n -> n.startsWith("classifier.")));
        }
    }

    @Test
    void halfToFloatMatchesKnownBitPatterns() {
        assertEquals(1.0f, HostTensor.halfToFloat((short) 0x3c00));
        assertEquals(-2.0f, HostTensor.halfToFloat((short) 0xc000));
        assertEquals(65504f, HostTensor.halfToFloat((short) 0x7bff));
        assertEquals(0x1p-24f, HostTensor.halfToFloat((short) 0x0001));
        assertEquals(Float.POSITIVE_INFINITY, HostTensor.halfToFloat((short) 0x7c00));
        assertTrue(Float.isNaN(HostTensor.halfToFloat((short) 0x7e00)));
    }

    // ---- synthetic archives

    private Path write(String name, byte[] bytes) throws IOException {
        Path p = tmp.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    private Path archive(String name, byte[] pickle, Map<String, byte[]> storages, boolean deflate) throws IOException {
        Map<String, byte[]> e = new LinkedHashMap<>();
        e.put("archive/data.pkl", pickle);
        storages.forEach((k, v) -> e.put("archive/data/" + k, v));
        e.put("archive/version", "3\n".getBytes());
        return write(name, PickleBytes.zip(e, deflate));
    }

    private static String failure(Path p) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> TorchCheckpoints.read(p));
        assertTrue(e.getMessage().contains(p.toString()), "message names the file: " + e.getMessage());
        return e.getMessage();
    }

    @Test
    void gathersColumnMajorAndOffsetViews() throws IOException {
        // storage 0..7; 'w' = 2x3 column-major at offset 1: [[1,3,5],[2,4,6]]
        byte[] pkl = PickleBytes.proto2().global("collections", "OrderedDict").emptyTuple().reduce()
                .mark()
                .str("w").tensor("FloatStorage", "0", "cuda:0", 8, 1, new long[] {2, 3}, new long[] {1, 2})
                .str("row").tensor("FloatStorage", "0", "cpu", 8, 6, new long[] {2}, new long[] {1})
                .str("scalar").tensor("FloatStorage", "0", "cpu", 8, 7, new long[] {}, new long[] {})
                .setitems().stop().bytes();
        Path p = archive("views.pt", pkl, Map.of("0", PickleBytes.floatsLE(0, 1, 2, 3, 4, 5, 6, 7)), false);
        try (StateDict sd = TorchCheckpoints.read(p)) {
            assertArrayEquals(new float[] {1, 3, 5, 2, 4, 6}, sd.get("w").toFloatArray());
            assertArrayEquals(new float[] {6, 7}, sd.get("row").toFloatArray());
            assertArrayEquals(new float[] {7}, sd.get("scalar").toFloatArray());
            assertEquals(0, sd.get("scalar").shape().length);
        }
    }

    @Test
    void wrappedDictParametersIntegersAndDeflatedEntries() throws IOException {
        // {"epoch": 3, "state_dict": OrderedDict(w=Parameter(float[2]), steps=int64[2], mask=bool[3])}
        PickleBytes b = PickleBytes.proto2().emptyDict().mark().str("epoch").integer(3).str("state_dict")
                .global("collections", "OrderedDict").emptyTuple().reduce().mark();
        b.str("w").global("torch._utils", "_rebuild_parameter");
        b.mark().tensor("FloatStorage", "0", "cpu", 2, 0, new long[] {2}, new long[] {1}).op(0x88)
                .global("collections", "OrderedDict").emptyTuple().reduce().tuple().reduce();
        b.str("steps").tensor("LongStorage", "1", "cpu", 2, 0, new long[] {2}, new long[] {1});
        b.str("mask").tensor("BoolStorage", "2", "cpu", 3, 0, new long[] {3}, new long[] {1});
        b.setitems().setitems().stop();
        ByteBuffer longs = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-5).putLong(1L << 40);
        Map<String, byte[]> st = new LinkedHashMap<>();
        st.put("0", PickleBytes.floatsLE(1.5f, -2.5f));
        st.put("1", longs.array());
        st.put("2", new byte[] {1, 0, 1});
        for (boolean deflate : new boolean[] {false, true}) {
            Path p = archive("wrapped" + deflate + ".pt", b.bytes(), st, deflate);
            try (StateDict sd = TorchCheckpoints.read(p)) {
                assertEquals(List.of("w", "steps", "mask"), new ArrayList<>(sd.names()));
                assertArrayEquals(new float[] {1.5f, -2.5f}, sd.get("w").toFloatArray());
                assertEquals(DType.INT64, sd.get("steps").dtype());
                assertArrayEquals(new long[] {-5, 1L << 40}, sd.get("steps").toLongArray());
                assertEquals(DType.BOOL, sd.get("mask").dtype());
                assertArrayEquals(new long[] {1, 0, 1}, sd.get("mask").toLongArray());
            }
            try (StateDict sd = TorchCheckpoints.read(p, "state_dict")) {
                assertEquals(3, sd.size());
            }
            String msg = assertThrows(CheckpointException.class, () -> TorchCheckpoints.read(p, "model")).getMessage();
            assertTrue(msg.contains("'model'") && msg.contains("state_dict"), msg);
        }
    }

    // ---- hostile and broken files

    private Path withGlobal(String name, byte[] globalOps) throws IOException {
        byte[] pkl = PickleBytes.proto2().raw(globalOps).str("echo pwned").op(0x85).reduce().stop().bytes();
        return archive(name, pkl, Map.of(), false);
    }

    @Test
    void refusesOsSystem() throws IOException {
        String m = failure(withGlobal("os.pt", PickleBytes.proto2().global("os", "system").bytes()));
        assertTrue(m.contains("forbidden global 'os.system'"), m);
    }

    @Test
    void refusesPosixSystemAndSubprocess() throws IOException {
        assertTrue(failure(withGlobal("posix.pt", new PickleBytes().global("posix", "system").bytes())).contains("'posix.system'"));
        assertTrue(failure(withGlobal("sp.pt", new PickleBytes().global("subprocess", "Popen").bytes())).contains("'subprocess.Popen'"));
    }

    @Test
    void refusesBuiltinsEvalViaStackGlobal() throws IOException {
        String m = failure(withGlobal("eval.pt", new PickleBytes().shortStr("builtins").shortStr("eval").op(0x93).bytes()));
        assertTrue(m.contains("forbidden global 'builtins.eval'"), m);
    }

    @Test
    void refusesUnknownGlobal() throws IOException {
        String m = failure(withGlobal("mod.pt", new PickleBytes().global("torch.nn.modules.linear", "Linear").bytes()));
        assertTrue(m.contains("'torch.nn.modules.linear.Linear'"), m);
        // a whole model (torch.save(model)) is told apart, with the form to save instead
        assertTrue(m.contains("pickled Python object") && m.contains("torch.save(model.state_dict(), path)"), m);
    }

    @Test
    void tellsATorchScriptArchiveFromAStateDict() throws IOException {
        String m = failure(withGlobal("scripted.pt", new PickleBytes().global("__torch__.torch.nn.modules.linear", "Linear").bytes()));
        assertTrue(m.contains("TorchScript archive (torch.jit.save; it names '__torch__.torch.nn.modules.linear.Linear')"), m);
        assertTrue(m.contains("torch.save(module.state_dict(), path)"), m);
    }

    @Test
    void refusesUnknownOpcode() throws IOException {
        // 'I' (INT, text protocol 0) is not one we implement; nor is 'i' (INST), which could build any object
        String m = failure(archive("op.pt", PickleBytes.proto2().raw("I42\n".getBytes()).stop().bytes(), Map.of(), false));
        assertTrue(m.contains("unsupported pickle opcode 0x49 ('I')"), m);
        String m2 = failure(archive("inst.pt", PickleBytes.proto2().raw("ios\nsystem\n".getBytes()).stop().bytes(), Map.of(), false));
        assertTrue(m2.contains("opcode 0x69 ('i')"), m2);
    }

    @Test
    void refusesTruncatedCheckpoint() throws IOException {
        byte[] all = Files.readAllBytes(fixture("flava_classification.pt"));
        String m = failure(write("half.pt", java.util.Arrays.copyOf(all, all.length / 2)));
        assertTrue(m.contains("truncated"), m);
    }

    @Test
    void refusesNonZipAndEmptyFiles() throws IOException {
        String m = failure(write("text.pt", "hello, this is not a checkpoint".getBytes()));
        assertTrue(m.contains("not a torch.save file"), m);
        assertTrue(failure(write("empty.pt", new byte[0])).contains("not a torch.save file"));
        String legacy = failure(write("legacy.pt", new byte[] {(byte) 0x80, 2, (byte) 0x8a, 10}));
        assertTrue(legacy.contains("legacy"), legacy);
    }

    @Test
    void refusesArchiveWithoutDataPkl() throws IOException {
        Path p = write("nopkl.pt", PickleBytes.zip(Map.of("archive/version", "3\n".getBytes()), false));
        assertTrue(failure(p).contains("data.pkl"));
    }

    @Test
    void refusesMissingStorageEntry() throws IOException {
        Path p = archive("nostorage.pt", PickleBytes.oneTensor(4, 0, new long[] {4}, new long[] {1}), Map.of(), false);
        String m = failure(p);
        assertTrue(m.contains("storage entry 'archive/data/0' is missing"), m);
    }

    @Test
    void refusesStorageLargerThanItsEntry() throws IOException {
        // declares 1e9 floats (4 GB) but the entry has 10: must fail before allocating anything
        Path p = archive("numel.pt", PickleBytes.oneTensor(1_000_000_000L, 0, new long[] {10}, new long[] {1}),
                Map.of("0", new byte[40]), false);
        String m = failure(p);
        assertTrue(m.contains("declares 1000000000 float32 elements") && m.contains("holds 40 bytes"), m);
    }

    @Test
    void refusesTensorOutsideItsStorage() throws IOException {
        Path p = archive("extent.pt", PickleBytes.oneTensor(10, 5, new long[] {10}, new long[] {1}),
                Map.of("0", new byte[40]), false);
        String m = failure(p);
        assertTrue(m.contains("tensor 'w'") && m.contains("reaches element 14 outside its storage '0' of 10 elements"), m);
        Path q = archive("stride.pt", PickleBytes.oneTensor(10, 0, new long[] {2, 3}, new long[] {1, 5}),
                Map.of("0", new byte[40]), false);
        assertTrue(failure(q).contains("outside its storage"));
    }

    @Test
    void refusesMalformedPickles() throws IOException {
        // no STOP, stack underflow, memo key never stored, self-referencing dict key
        assertTrue(failure(archive("nostop.pt", PickleBytes.proto2().emptyDict().bytes(), Map.of(), false)).contains("without STOP"));
        assertTrue(failure(archive("under.pt", PickleBytes.proto2().setitem().stop().bytes(), Map.of(), false)).contains("underflow"));
        assertTrue(failure(archive("memo.pt", PickleBytes.proto2().op('h').op(7).stop().bytes(), Map.of(), false)).contains("memo key 7"));
        byte[] selfRef = PickleBytes.proto2().emptyDict().op(']').op('q').op(0).op('h').op(0).op('a').op('0').op('h').op(0).integer(1)
                .setitem().stop().bytes();
        assertTrue(failure(archive("selfref.pt", selfRef, Map.of(), false)).contains("unsupported dict key"));
        // a string whose length runs past the end: no huge allocation
        byte[] bigStr = PickleBytes.proto2().op('X').op(0xff).op(0xff).op(0xff).op(0x7f).stop().bytes();
        assertTrue(failure(archive("bigstr.pt", bigStr, Map.of(), false)).contains("runs past the end"));
    }

    @Test
    void refusesPicklesOfMoreOperationsThanAStateDictNeeds() throws IOException {
        // a small file that would run millions of operations (each may build an object): refused by count
        PickleBytes many = PickleBytes.proto2();
        for (int i = 0; i < TorchPickle.MAX_OPERATIONS / 2 + 1; i++) {
            many.op('N').op('0'); // NONE, POP
        }
        String m = failure(archive("many.pt", many.emptyDict().stop().bytes(), Map.of(), true));
        assertTrue(m.contains("many.pt") && m.contains("more than 5000000 pickle operations"), m);
    }
}
