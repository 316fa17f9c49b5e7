package dev.mm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Corrupt .pt archives: CRC-32, local headers, DEFLATE bounds, and the whole-file check {@code inspect} runs. */
class ZipIntegrityTest {
    @TempDir Path tmp;

    private static byte[] fixture() throws IOException {
        return Files.readAllBytes(TorchCheckpointsTest.fixture("flava_classification.pt"));
    }

    private Path write(String name, byte[] bytes) throws IOException {
        Path p = tmp.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    private static String refused(Path p) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> {
            try (StateDict sd = TorchCheckpoints.read(p)) {
                fail("loaded " + sd.size() + " tensors from a corrupt file");
            }
        });
        assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
        return e.getMessage();
    }

    @Test
    void aChangedWeightByteFailsTheCrcCheck() throws IOException {
        byte[] raw = fixture();
        ZipLayout.Entry e = ZipLayout.of(raw).endingWith("/data/5");
        raw[e.data() + 3] ^= 0x40; // before: loaded with one weight changed
        String m = refused(write("weight.pt", raw));
        assertTrue(m.contains("entry 'flava_classification/data/5' fails its CRC-32 check"), m);
    }

    @Test
    void aChangedPickleByteFailsTheCrcCheck() throws IOException {
        byte[] raw = fixture();
        ZipLayout.Entry e = ZipLayout.of(raw).endingWith("/data.pkl");
        // a digit of some tensor's shape or a key inside the pickle, somewhere in the middle
        int at = e.data() + e.compressedSize() / 2;
        raw[at] = (byte) (raw[at] == 'a' ? 'b' : 'a');
        assertTrue(refused(write("pickle.pt", raw)).contains("CRC-32"));
    }

    @Test
    void aLocalHeaderNamingAnotherEntryIsRefused() throws IOException {
        byte[] raw = fixture();
        ZipLayout.Entry e = ZipLayout.of(raw).endingWith("/data/10");
        raw[e.localHeader() + 30 + e.name().length() - 1] = '1'; // the local header now says data/11
        String m = refused(write("local.pt", raw));
        assertTrue(m.contains("local file header names a different entry"), m);
    }

    @Test
    void inspectChecksEntriesALoadNeverReads() throws IOException {
        byte[] raw = fixture();
        ZipLayout.Entry version = ZipLayout.of(raw).endingWith("/version");
        raw[version.data()] ^= 1;
        Path p = write("version.pt", raw);
        try (StateDict sd = TorchCheckpoints.read(p)) {
            assertEquals(131, sd.size()); // a load does not read 'version'
        }
        String m = assertThrows(CheckpointException.class, () -> Checkpoints.verify(p)).getMessage();
        assertTrue(m.contains("entry 'flava_classification/version' fails its CRC-32 check"), m);
        assertEquals("integrity: all 133 zip entries pass their CRC-32 check",
                Checkpoints.verify(TorchCheckpointsTest.fixture("flava_classification.pt")));
    }

    @Test
    void aFolderIsNamedInTheMessage() throws IOException {
        // a folder is read as a Hugging Face model folder; one without weights is named in one line
        String m = assertThrows(CheckpointException.class, () -> Checkpoints.verify(tmp)).getMessage();
        assertEquals(tmp + ": a folder without model.safetensors, model.safetensors.index.json, pytorch_model.bin, "
                + "pytorch_model.bin.index.json or any other checkpoint file", m);
    }

    /** An archive of one float tensor 'w' over a storage of {@code bytes} zeros, all entries DEFLATED. */
    private Path deflatedZeros(String name, int bytes) throws IOException {
        Map<String, byte[]> e = new LinkedHashMap<>();
        e.put("archive/data.pkl", PickleBytes.oneTensor(bytes / 4, 0, new long[] {bytes / 4}, new long[] {1}));
        e.put("archive/data/0", new byte[bytes]);
        e.put("archive/version", "3\n".getBytes());
        return write(name, PickleBytes.zip(e, true));
    }

    private static long allocatedBytes() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    @Test
    void deflatedStoragesAreCheckedInBoundedMemory() throws IOException {
        int size = 64 << 20;
        Path p = deflatedZeros("zeros.pt", size);
        assertTrue(Files.size(p) < 200_000, "64 MiB of zeros deflate to " + Files.size(p) + " bytes");
        long before = allocatedBytes();
        Checkpoints.verify(p);
        try (StateDict sd = TorchCheckpoints.read(p)) {
            assertEquals(size / 4, sd.get("w").numel());
        }
        long allocated = allocatedBytes() - before;
        // before: reading inflated every storage up front into one heap buffer of its declared size
        assertTrue(allocated < 16 << 20, "verify + read allocated " + allocated / 1e6 + " MB for a 64 MiB storage");
        try (StateDict sd = TorchCheckpoints.read(p)) {
            float[] w = sd.get("w").toFloatArray(); // the data, when asked for, is there
            assertEquals(size / 4, w.length);
            assertEquals(0f, w[w.length - 1]);
        }
    }

    @Test
    void aDeflatedEntryThatInflatesPastItsDeclaredSizeIsRefused() throws IOException {
        int size = 1 << 20;
        byte[] raw = Files.readAllBytes(deflatedZeros("grow.pt", size));
        ZipLayout.Entry e = ZipLayout.of(raw).endingWith("/data/0");
        // declare a smaller entry and storage in the central directory: the data inflates further than that
        ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).putInt(e.centralRecord() + 24, 4096);
        String m = refused(write("grow2.pt", raw));
        assertTrue(m.contains("declares") || m.contains("inflates to more than its declared 4096 bytes"), m);
        String v = assertThrows(CheckpointException.class, () -> Checkpoints.verify(tmp.resolve("grow2.pt"))).getMessage();
        assertTrue(v.contains("inflates to more than its declared 4096 bytes"), v);
    }
}
