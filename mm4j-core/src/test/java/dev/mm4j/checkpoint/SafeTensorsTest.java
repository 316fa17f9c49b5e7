package dev.mm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsTest {
    @TempDir Path tmp;

    @Test
    void roundTripsFloatsLongsAndMetadata() throws IOException {
        Map<String, HostTensor> in = new LinkedHashMap<>();
        in.put("b.weight", HostTensor.ofFloats(new float[] {1f, -2.5f, 3e-8f, Float.MAX_VALUE, -0f, 7f}, 2, 3));
        in.put("a.steps", HostTensor.ofLongs(new long[] {-1, Long.MAX_VALUE, 42}, 3));
        in.put("scalar", HostTensor.ofFloats(new float[] {0.5f}));
        in.put("empty", HostTensor.ofFloats(new float[0], 0, 4));
        Path p = tmp.resolve("t.safetensors");
        SafeTensors.write(p, in, Map.of("format", "pt", "step", "3"));

        byte[] raw = Files.readAllBytes(p);
        long n = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        assertEquals(0, n % 8, "header is padded to 8 bytes");
        String header = new String(raw, 8, (int) n, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{\"__metadata__\":{"), header);
        assertTrue(header.contains("\"b.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"), header);
        assertTrue(header.contains("\"a.steps\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[24,48]}"), header);
        assertEquals(8 + n + 24 + 24 + 4, raw.length);
        // first data element is 1.0f little-endian
        assertEquals(1f, ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).getFloat((int) (8 + n)));

        try (StateDict sd = SafeTensors.read(p)) {
            assertEquals(List.of("b.weight", "a.steps", "scalar", "empty"), new ArrayList<>(sd.names()));
            assertEquals(Map.of("format", "pt", "step", "3"), sd.metadata());
            assertArrayEquals(new long[] {2, 3}, sd.get("b.weight").shape());
            assertArrayEquals(in.get("b.weight").toFloatArray(), sd.get("b.weight").toFloatArray(), 0f);
            assertArrayEquals(new long[] {-1, Long.MAX_VALUE, 42}, sd.get("a.steps").toLongArray());
            assertEquals(0, sd.get("scalar").shape().length);
            assertArrayEquals(new float[] {0.5f}, sd.get("scalar").toFloatArray());
            assertEquals(0, sd.get("empty").numel());
        }
    }

    @Test
    void roundTripsTheTorchFixtureIncludingViewsAndFp16() throws IOException {
        for (String f : List.of("flava_classification_views.pt", "flava_classification_fp16.pt")) {
            Path st = tmp.resolve(f + ".safetensors");
            try (StateDict src = TorchCheckpoints.read(TorchCheckpointsTest.fixture(f))) {
                SafeTensors.write(st, src.asMap(), Map.of());
                try (StateDict back = Checkpoints.read(st)) {
                    assertEquals(new ArrayList<>(src.names()), new ArrayList<>(back.names()));
                    for (String name : src.names()) {
                        assertEquals(DType.FLOAT32, back.get(name).dtype());
                        assertArrayEquals(src.get(name).shape(), back.get(name).shape(), name);
                        assertArrayEquals(src.get(name).toFloatArray(), back.get(name).toFloatArray(), 0f, name);
                    }
                }
            }
        }
    }

    /** Hand-builds a safetensors file from a header string and data bytes. */
    private Path file(String name, String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).array());
        o.writeBytes(h);
        o.writeBytes(data);
        Path p = tmp.resolve(name);
        Files.write(p, o.toByteArray());
        return p;
    }

    @Test
    void readsF16Bf16AndI64() throws IOException {
        ByteBuffer d = ByteBuffer.allocate(2 * 2 + 2 * 2 + 8).order(ByteOrder.LITTLE_ENDIAN);
        d.putShort((short) 0x3c00).putShort((short) 0xc500); // f16: 1.0, -5.0
        d.putShort((short) 0x4049).putShort((short) 0xbf80); // bf16: 3.140625, -1.0
        d.putLong(-7);
        Path p = file("mixed.safetensors", "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[4,8]},"
                + "\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[8,16]}}", d.array());
        try (StateDict sd = Checkpoints.read(p)) {
            assertEquals(DType.FLOAT16, sd.get("h").dtype());
            assertArrayEquals(new float[] {1f, -5f}, sd.get("h").toFloatArray());
            assertArrayEquals(new float[] {3.140625f, -1f}, sd.get("b").toFloatArray());
            assertArrayEquals(new long[] {-7}, sd.get("i").toLongArray());
            assertFalse(sd.get("i").isFloating());
        }
    }

    private String failure(Path p) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafeTensors.read(p));
        assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
        return e.getMessage();
    }

    @Test
    void validatesTheHeader() throws IOException {
        byte[] d8 = new byte[8];
        assertTrue(failure(file("outside.st", "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d8))
                .contains("tensor 'x' has data_offsets [0, 16] outside the data (8 bytes)"));
        assertTrue(failure(file("overlap.st", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", d8)).contains("'x' and 'y' overlap"));
        assertTrue(failure(file("dtype.st", "{\"x\":{\"dtype\":\"F8_E8M0\",\"shape\":[8],\"data_offsets\":[0,8]}}", d8))
                .contains("unknown dtype 'F8_E8M0'"));
        assertTrue(failure(file("size.st", "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", d8))
                .contains("needs 12 bytes but data_offsets span 8"));
        assertTrue(failure(file("neg.st", "{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", d8))
                .contains("invalid shape"));
        assertTrue(failure(file("json.st", "{\"x\": [1, 2", d8)).contains("not valid JSON"));
        assertTrue(failure(file("dup.st", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", d8)).contains("Duplicate field 'x'"));
        assertTrue(failure(file("meta.st", "{\"__metadata__\":{\"a\":1}}", d8)).contains("'a' is not a string"));
        Path huge = tmp.resolve("huge.st");
        Files.write(huge, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).array());
        assertTrue(failure(huge).contains("header length 1099511627776 is impossible"));
        Path tiny = tmp.resolve("tiny.st");
        Files.write(tiny, new byte[3]);
        assertTrue(failure(tiny).contains("too small"));
    }

    /** A valid file of two tensors (24 + 8 bytes of data) written by our writer, as bytes. */
    private byte[] twoTensors() throws IOException {
        Map<String, HostTensor> in = new LinkedHashMap<>();
        in.put("w", HostTensor.ofFloats(new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
        in.put("b", HostTensor.ofFloats(new float[] {7, 8}, 2));
        Path p = tmp.resolve("good.safetensors");
        SafeTensors.write(p, in, Map.of("format", "pt"));
        return Files.readAllBytes(p);
    }

    private static long headerLength(byte[] raw) {
        return ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    }

    @Test
    void refusesAHeaderLengthThatIsOffByAFewBytes() throws IOException {
        byte[] good = twoTensors();
        long n = headerLength(good);
        for (int d = -7; d <= 7; d++) {
            if (d == 0) continue;
            byte[] bad = good.clone();
            ByteBuffer.wrap(bad).order(ByteOrder.LITTLE_ENDIAN).putLong(0, n + d);
            Path p = tmp.resolve("len" + d + ".safetensors");
            Files.write(p, bad);
            failure(p); // before: |d| <= padding loaded every tensor shifted by d bytes
        }
    }

    @Test
    void refusesBytesTheHeaderDoesNotDescribe() throws IOException {
        byte[] good = twoTensors();
        int n = (int) headerLength(good);
        // trailing bytes after the last tensor
        Path tail = tmp.resolve("tail.safetensors");
        Files.write(tail, java.util.Arrays.copyOf(good, good.length + 4));
        assertTrue(failure(tail).contains("the tensors cover 32 bytes but the data section holds 36"), failure(tail));
        // something other than whitespace after the JSON object inside the header
        byte[] junk = good.clone();
        junk[8 + n - 1] = 'x';
        String m = failure(write("junk.safetensors", junk));
        assertTrue(m.contains("not valid JSON"), m);
        // a gap between two tensors
        assertTrue(failure(file("gap.st", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", new byte[12]))
                .contains("4 bytes of the data section at offset 4 (after tensor 'x') belong to no tensor"));
        // data that starts after a hole
        assertTrue(failure(file("hole.st", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]))
                .contains("before the first tensor"));
        // an empty header, and one with only metadata
        assertTrue(failure(file("empty.st", "{}", new byte[0])).contains("holds no tensors"));
        assertTrue(failure(file("onlymeta.st", "{\"__metadata__\":{\"a\":\"b\"}}", new byte[0])).contains("holds no tensors"));
        // a header that does not start with '{' (leading space, as a header length off by one downwards would give)
        assertTrue(failure(file("lead.st", " {\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]))
                .contains("does not start with '{'"));
    }

    @Test
    void refusesNamesThatAreNotUtf8() throws IOException {
        byte[] good = twoTensors();
        String header = new String(good, 8, (int) headerLength(good), StandardCharsets.UTF_8);
        int at = 8 + header.indexOf("\"w\"") + 1;
        byte[] bad = good.clone();
        bad[at] = (byte) 0xC3; // a lone lead byte: before, decoded to U+FFFD and loaded as tensor '\uFFFD'
        assertTrue(failure(write("utf8.safetensors", bad)).contains("not valid UTF-8"));
        // valid non-ASCII names load
        Path ok = tmp.resolve("unicode.safetensors");
        SafeTensors.write(ok, Map.of("gewicht.äöü", HostTensor.ofFloats(new float[] {1}, 1)), Map.of());
        try (StateDict sd = SafeTensors.read(ok)) {
            assertTrue(sd.contains("gewicht.äöü"));
        }
    }

    @Test
    void writerRefusesToWriteNoTensors() {
        assertThrows(IllegalArgumentException.class, () -> SafeTensors.write(tmp.resolve("none.safetensors"), Map.of(), Map.of()));
    }

    private Path write(String name, byte[] bytes) throws IOException {
        Path p = tmp.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    @Test
    void failedWriteLeavesTheOldFileAndNoTempFile() throws IOException {
        Path p = tmp.resolve("model.safetensors");
        SafeTensors.write(p, Map.of("old", HostTensor.ofFloats(new float[] {9f}, 1)), Map.of());
        byte[] before = Files.readAllBytes(p);

        long[] shape = {1000};
        Map<String, HostTensor> in = new LinkedHashMap<>();
        in.put("first", HostTensor.ofFloats(new float[1000], 1000));
        // a tensor whose data cannot be produced: fails after the header and the first tensor were written
        in.put("broken", new HostTensor(DType.FLOAT32, shape, () -> {
            throw new UncheckedIOException(new IOException("disk went away"));
        }, 0, HostTensor.contiguousStrides(shape)));
        IOException e = assertThrows(IOException.class, () -> SafeTensors.write(p, in, Map.of()));
        assertTrue(e.getMessage().contains("'broken'") && e.getMessage().contains("disk went away"), e.getMessage());

        assertArrayEquals(before, Files.readAllBytes(p));
        try (Stream<Path> files = Files.list(tmp)) {
            assertEquals(List.of(p), files.toList(), "no temp file left behind");
        }
        try (StateDict sd = SafeTensors.read(p)) {
            assertEquals(List.of("old"), new ArrayList<>(sd.names()));
        }
    }

    @Test
    void detectsFormatsByTheirFirstBytes() throws IOException {
        assertEquals(CheckpointFormat.TORCH_ZIP, CheckpointFormat.detect(TorchCheckpointsTest.fixture("flava_classification.pt")));
        Path st = tmp.resolve("x.safetensors");
        SafeTensors.write(st, Map.of("x", HostTensor.ofFloats(new float[] {1}, 1)), Map.of());
        assertEquals(CheckpointFormat.SAFETENSORS, CheckpointFormat.detect(st));
        try (StateDict sd = Checkpoints.read(TorchCheckpointsTest.fixture("flava_classification.pt"))) {
            assertEquals(131, sd.size());
        }
        Path junk = tmp.resolve("junk.bin");
        Files.writeString(junk, "GIF89a and then some bytes");
        String m = assertThrows(CheckpointException.class, () -> Checkpoints.read(junk)).getMessage();
        assertTrue(m.contains(junk.toString()) && m.contains("neither a torch.save file nor a safetensors file"), m);
        Path missing = tmp.resolve("nope.pt");
        assertTrue(assertThrows(CheckpointException.class, () -> Checkpoints.read(missing)).getMessage().contains("no such file"));
    }
}
