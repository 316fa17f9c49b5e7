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
        try (InputStream in = TorchDtypesReferenceTest.class.getResourceAsStream("/reference/torch-dtypes/expected.json")) {
            return new ObjectMapper().readTree(in).get("tensors");
        }
    }

    @Test
    void torchSaveOfEveryDtypeLoadsPyTorchsValues() throws Exception {
        try (StateDict sd = Checkpoints.read(resource("dtypes.pt"))) {
            assertSameAsPyTorch(sd, expected());
        }
    }

    @Test
    void safetensorsOfEveryDtypeLoadsPyTorchsValues() throws Exception {
        try (StateDict sd = Checkpoints.read(resource("dtypes.safetensors"))) {
            assertSameAsPyTorch(sd, expected());
        }
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
