package dev.mm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every dtype as PyTorch 2.14 and safetensors save it ({@code tools/torch_dtypes_reference.py}): the classic ones
 * through typed storages, uint16/32/64 and float8 through {@code _rebuild_tensor_v3} on untyped storages (two float8
 * dtypes and a strided view sharing one), each value as PyTorch converts it to float32 or int64.
 */
class TorchDtypesReferenceTest {
    @TempDir Path tmp;

    private static Path resource(String name) throws URISyntaxException {
        return Path.of(TorchDtypesReferenceTest.class.getResource("/reference/torch-dtypes/" + name).toURI());
    }

    private static JsonNode expected() throws IOException {
        try (InputStream in = TorchDtypesReferenceTest.class.getResourceAsStream("/reference/torch-dtypes/values.json")) {
            return new ObjectMapper().readTree(in).get("tensors");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"dtypes.pt", "dtypes.safetensors", "no-crc32.pt"})
    void everyDtypeLoadsPyTorchsValues(String file) throws Exception {
        try (StateDict sd = Checkpoints.read(resource(file))) {
            assertSameAsPyTorch(sd, expected());
        }
    }

    @Test
    void anArchiveWrittenWithoutCrc32sSaysSoWhereOneWithThemChecksThem() throws Exception {
        assertEquals("integrity: written without CRC-32s (torch.serialization.set_crc32_options(False)): the 20 zip"
                + " entries' sizes and headers check out, their bytes cannot be checked", Checkpoints.verify(resource("no-crc32.pt")));
        assertEquals("integrity: all 20 zip entries pass their CRC-32 check", Checkpoints.verify(resource("dtypes.pt")));
    }

    @Test
    void legacyTorchSaveOfEveryDtypeLoadsPyTorchsValues() throws Exception {
        Path p = resource("dtypes-legacy.pt");
        assertEquals(CheckpointFormat.TORCH_LEGACY, CheckpointFormat.detect(p));
        try (StateDict sd = Checkpoints.read(p)) { // the dict under "state_dict", beside "epoch"
            assertSameAsPyTorch(sd, expected());
        }
        assertEquals("integrity: 14 storages fill the file exactly after its pickles (the legacy format has no checksum)",
                Checkpoints.verify(p));
    }

    @Test
    void aTruncatedOrExtendedLegacyFileIsOneLineNamingWhere() throws Exception {
        byte[] raw = Files.readAllBytes(resource("dtypes-legacy.pt"));
        Path cut = tmp.resolve("cut.pt");
        Files.write(cut, java.util.Arrays.copyOf(raw, raw.length - 3));
        String m = assertThrows(CheckpointException.class, () -> Checkpoints.read(cut)).getMessage();
        assertTrue(m.startsWith(cut + ": legacy torch.save file: truncated: storage '"), m);
        Path longer = tmp.resolve("longer.pt");
        Files.write(longer, java.util.Arrays.copyOf(raw, raw.length + 5));
        m = assertThrows(CheckpointException.class, () -> Checkpoints.read(longer)).getMessage();
        assertTrue(m.endsWith("storages end at byte " + raw.length + " but the file has " + (raw.length + 5)), m);
        Path pickles = tmp.resolve("pickles-only.pt");
        Files.write(pickles, java.util.Arrays.copyOf(raw, 200));
        m = assertThrows(CheckpointException.class, () -> Checkpoints.read(pickles)).getMessage();
        assertTrue(m.startsWith(pickles + " [legacy torch.save]: "), m);
    }

    @Test
    void legacyMutantsAreRefusedInOneLineOrLoadWithinTheirStorages() throws Exception {
        // the legacy format has no checksum: a mutant may load (its data bytes as written), but never read outside
        // a storage or fail with anything but a CheckpointException
        byte[] raw = Files.readAllBytes(resource("dtypes-legacy.pt"));
        java.util.Random rnd = new java.util.Random(20261207L);
        int refused = 0, loaded = 0;
        for (int i = 0; i < 600; i++) {
            byte[] m = raw.clone();
            for (int k = 1 + rnd.nextInt(3); k > 0; k--) {
                // mostly in the pickles (the first ~2 KB), where the structure is
                int at = rnd.nextInt(4) > 0 ? rnd.nextInt(Math.min(m.length, 2200)) : rnd.nextInt(m.length);
                m[at] = (byte) (rnd.nextBoolean() ? rnd.nextInt(256) : m[at] ^ (1 << rnd.nextInt(8)));
            }
            Path p = tmp.resolve("m" + i + ".pt");
            Files.write(p, m);
            try (StateDict sd = Checkpoints.read(p)) {
                for (HostTensor t : sd.asMap().values()) {
                    try {
                        t.data();
                    } catch (IllegalStateException e) { // a mutated uint64 at 2^63 or above
                        assertTrue(e.getMessage().startsWith("uint64 value "), e.getMessage());
                    }
                }
                loaded++;
            } catch (CheckpointException e) {
                assertFalse(e.getMessage().contains("\n"), e.getMessage());
                refused++;
            }
            Files.delete(p);
        }
        assertEquals(600, refused + loaded);
        assertTrue(refused > 100 && loaded > 10, refused + " refused, " + loaded + " loaded");
    }

    @Test
    void whatTorchLoadsWithWeightsOnlyLoadsHere() throws Exception {
        // a tensor and a parameter with Python attributes (dropped), and a Counter, set, bytes, bytearray and complex
        // beside the state dict
        try (StateDict sd = Checkpoints.read(resource("weights-only-extras.pt"))) {
            assertEquals(java.util.List.of("plain", "flagged", "param"), new java.util.ArrayList<>(sd.names()));
            assertArrayEquals(new float[] {1, 1}, sd.get("plain").toFloatArray());
            assertArrayEquals(new float[] {0, 1, 2, 3}, sd.get("flagged").toFloatArray());
            assertArrayEquals(new float[] {0.5f, -0.25f}, sd.get("param").toFloatArray());
        }
        Object top = TorchPickle.load("extras", zipEntry(resource("weights-only-extras.pt"), "data.pkl"));
        Map<?, ?> m = (Map<?, ?>) top;
        assertEquals(Map.of("x", 2L), m.get("counter"));
        assertEquals(java.util.List.of(1L, 2L), m.get("set"));
        assertArrayEquals(new byte[] {0, (byte) 0xff, 'a', 'b'}, (byte[]) m.get("bytes"));
        assertArrayEquals(new byte[] {'x', 'y'}, (byte[]) m.get("bytearray"));
        assertArrayEquals(new double[] {1, 2}, (double[]) m.get("complex"));
    }

    private static java.nio.ByteBuffer zipEntry(Path zip, String suffix) throws IOException {
        try (java.util.zip.ZipFile z = new java.util.zip.ZipFile(zip.toFile())) {
            java.util.zip.ZipEntry e = z.stream().filter(x -> x.getName().endsWith("/" + suffix)).findFirst().orElseThrow();
            return java.nio.ByteBuffer.wrap(z.getInputStream(e).readAllBytes());
        }
    }

    @Test
    void aTensorSubclassOrANestedRebuildIsOneLine() {
        // _rebuild_from_type_v2(_rebuild_tensor_v2, type, (), {}) with a type other than Tensor / Parameter: named,
        // nothing built (a class of the user's own is refused earlier, at its GLOBAL)
        byte[] sub = new PickleBytes().raw(new byte[] {(byte) 0x80, 2}).global("torch._tensor", "_rebuild_from_type_v2")
                .mark().global("torch._utils", "_rebuild_tensor_v2").global("torch", "Size").op(')').op('}').tuple()
                .reduce().stop().bytes();
        String m = assertThrows(CheckpointException.class, () -> TorchPickle.load("sub", java.nio.ByteBuffer.wrap(sub))).getMessage();
        assertTrue(m.startsWith("sub: a tensor of subclass 'torch.Size', which mm4j does not read"), m);
        byte[] nested = new PickleBytes().raw(new byte[] {(byte) 0x80, 2}).global("torch._tensor", "_rebuild_from_type_v2")
                .mark().global("torch._tensor", "_rebuild_from_type_v2").global("torch", "Tensor").op(')').op('}').tuple()
                .reduce().stop().bytes();
        m = assertThrows(CheckpointException.class, () -> TorchPickle.load("nested", java.nio.ByteBuffer.wrap(nested))).getMessage();
        assertTrue(m.startsWith("nested: malformed _rebuild_from_type_v2"), m);
    }

    @Test
    void aDistributedCheckpointFolderNamesTheConversion() throws Exception {
        // what torch.distributed.checkpoint.save writes (FSDP's way): .metadata and one .distcp file per rank
        Path dcp = Files.createDirectories(tmp.resolve("dcp"));
        Files.write(dcp.resolve(".metadata"), new byte[] {(byte) 0x80, 4});
        Files.write(dcp.resolve("__0_0.distcp"), new byte[] {'P', 'K', 3, 4});
        String m = assertThrows(CheckpointException.class, () -> Checkpoints.read(dcp)).getMessage();
        assertEquals(dcp + ": a torch.distributed.checkpoint folder (.metadata and *.distcp, as FSDP saves it), which mm4j"
                + " does not read; convert it into one file with: python -m torch.distributed.checkpoint.format_utils"
                + " dcp_to_torch " + dcp + " model.pt", m);
    }

    @Test
    void aPickleThatIsNotTorchSaveIsToldApart() throws Exception {
        // pickle.dumps({"a": 1}, protocol=2)
        byte[] plain = {(byte) 0x80, 2, '}', 'q', 0, 'X', 1, 0, 0, 0, 'a', 'q', 1, 'K', 1, 's', '.'};
        Path p = tmp.resolve("plain.pkl");
        Files.write(p, plain);
        String m = assertThrows(CheckpointException.class, () -> Checkpoints.read(p)).getMessage();
        assertEquals(p + ": a pickle, not a torch.save file (its first value is dict, not torch's magic number); mm4j reads"
                + " torch.save and safetensors files", m);
    }

    @Test
    void newDtypesSurviveOurOwnWriters() throws Exception {
        try (StateDict sd = Checkpoints.read(resource("dtypes.pt"))) {
            Path pt = tmp.resolve("again.pt");
            Path st = tmp.resolve("again.safetensors");
            TorchCheckpoints.write(pt, sd.asMap());
            SafeTensors.write(st, sd.asMap(), Map.of());
            for (Path p : new Path[] {pt, st}) {
                try (StateDict again = Checkpoints.read(p)) {
                    for (String name : sd.names()) {
                        HostTensor a = sd.get(name), b = again.get(name);
                        assertEquals(a.dataType(), b.dtype(), p + " " + name); // written as float32 / int64
                        if (a.isFloating()) assertArrayEquals(a.toFloatArray(), b.toFloatArray(), 0f, p + " " + name);
                        else assertArrayEquals(a.toLongArray(), b.toLongArray(), p + " " + name);
                    }
                }
            }
        }
    }

    @Test
    void aDtypeWeDoNotReadIsOneLineNamingTheTensor() throws Exception {
        Path p = resource("unreadable-dtype.pt");
        String m = assertThrows(CheckpointException.class, () -> Checkpoints.read(p)).getMessage();
        assertTrue(m.contains("tensor 'w' has dtype float8_e4m3fnuz, which mm4j does not read (it reads float32, "), m);
        assertTrue(m.contains("float8_e4m3fn, float8_e5m2)"), m);
        assertFalse(m.contains("\n"), m);
    }

    @Test
    void uint64AboveInt64IsAnErrorNotAWrappedValue() throws Exception {
        byte[] raw = Files.readAllBytes(resource("dtypes.safetensors"));
        // the safetensors file's uint64 tensor holds 0, 1, 2^63 - 1: set the last one's top bit (2^64 - 1)
        try (StateDict sd = Checkpoints.read(resource("dtypes.safetensors"))) {
            assertEquals(Long.MAX_VALUE, sd.get("uint64").toLongArray()[2]);
        }
        int at = indexOf(raw, new byte[] {-1, -1, -1, -1, -1, -1, -1, 0x7f});
        assertTrue(at > 0);
        raw[at + 7] = (byte) 0xff;
        Path p = tmp.resolve("big.safetensors");
        Files.write(p, raw);
        try (StateDict sd = Checkpoints.read(p)) {
            String m = assertThrows(IllegalStateException.class, () -> sd.get("uint64").toLongArray()).getMessage();
            assertEquals("uint64 value 18446744073709551615 does not fit the int64 it loads as", m);
        }
    }

    private static int indexOf(byte[] a, byte[] b) {
        outer:
        for (int i = 0; i + b.length <= a.length; i++) {
            for (int j = 0; j < b.length; j++) if (a[i + j] != b[j]) continue outer;
            return i;
        }
        return -1;
    }

    private static void assertSameAsPyTorch(StateDict sd, JsonNode expected) {
        assertEquals(expected.size(), sd.size());
        for (Iterator<Map.Entry<String, JsonNode>> it = expected.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            HostTensor t = sd.get(name);
            assertNotNull(t, name);
            assertEquals(e.getValue().get(0).asText(), t.dtype().toString(), name);
            JsonNode shape = e.getValue().get(1), values = e.getValue().get(2);
            assertEquals(shape.size(), t.shape().length, name);
            for (int d = 0; d < shape.size(); d++) assertEquals(shape.get(d).asLong(), t.shape()[d], name);
            assertEquals(values.size(), t.numel(), name);
            if (t.isFloating()) {
                float[] f = t.toFloatArray();
                for (int i = 0; i < f.length; i++) {
                    JsonNode v = values.get(i);
                    float want = v.isTextual() ? Float.parseFloat(v.asText().replace("inf", "Infinity").replace("nan", "NaN"))
                            : (float) v.asDouble();
                    // bit for bit (NaN as NaN): both are PyTorch's conversion to float32
                    assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(f[i]), name + "[" + i + "] " + want + " vs " + f[i]);
                }
            } else {
                long[] l = t.toLongArray();
                for (int i = 0; i < l.length; i++) assertEquals(values.get(i).asLong(), l[i], name + "[" + i + "]");
            }
        }
    }
}
