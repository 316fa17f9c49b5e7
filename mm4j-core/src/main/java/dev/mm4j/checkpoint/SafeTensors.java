package dev.mm4j.checkpoint;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.util.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The Hugging Face safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 * ({@code {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}},
 * space-padded), then the raw little-endian data; offsets are relative to the end of the header.
 *
 * <p>Reading validates like the reference implementation: the header is valid UTF-8 and exactly one JSON object
 * (only whitespace padding after it), each tensor's dtype and shape need exactly its byte range, and the ranges,
 * in offset order, tile the data section from its first to its last byte (no gap, no overlap, nothing after).
 * A file without tensors is refused. The format has no checksum: a changed data byte cannot be detected.
 */
public final class SafeTensors {
    /** The largest header we accept (the reference implementation's limit, 100 MB). */
    static final long MAX_HEADER = 100_000_000L;
    private static final String METADATA = "__metadata__";
    private static final ObjectMapper JSON = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private SafeTensors() {}

    // ------------------------------------------------------------------ reading

    /** Reads all tensors (in header order) and the metadata; the data is memory-mapped, not copied. */
    public static StateDict read(Path file) throws IOException {
        FileChannel ch;
        try {
            ch = FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new CheckpointException(file + ": no such file", e);
        }
        try {
            StateDict sd = read(file, ch);
            ch = null;
            return sd;
        } catch (CheckpointException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new CheckpointException(file + ": unreadable safetensors file: " + e, e);
        } finally {
            if (ch != null) ch.close();
        }
    }

    private record Spec(String name, DType dtype, long[] shape, long begin, long end) {}

    private static StateDict read(Path file, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < 8) throw new CheckpointException(file + ": too small for a safetensors file (" + size + " bytes)");
        ByteBuffer lenBuf = readFully(ch, 0, 8);
        long n = lenBuf.getLong(0);
        if (n < 2 || n > MAX_HEADER || n > size - 8)
            throw new CheckpointException(file + ": safetensors header length " + Long.toUnsignedString(n)
                    + " is impossible for a file of " + size + " bytes");
        ByteBuffer hb = readFully(ch, 8, (int) n);
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(hb).toString();
        } catch (CharacterCodingException e) {
            throw new CheckpointException(file + ": safetensors header is not valid UTF-8", e);
        }
        if (text.charAt(0) != '{')
            throw new CheckpointException(file + ": safetensors header does not start with '{' (header length "
                    + n + " is wrong or the file is corrupt)");
        JsonNode header;
        try {
            // exactly one JSON object; only JSON whitespace (the writer's space padding) may follow it
            header = JSON.readerFor(JsonNode.class).with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).readValue(text);
        } catch (JsonProcessingException e) {
            throw new CheckpointException(file + ": safetensors header is not valid JSON (one object, then only whitespace): " + e.getOriginalMessage(), e);
        }
        if (header == null || !header.isObject()) throw new CheckpointException(file + ": safetensors header is not a JSON object");
        long dataStart = 8 + n, dataLen = size - dataStart;

        Map<String, String> metadata = new LinkedHashMap<>();
        List<Spec> specs = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String name = f.getKey();
            JsonNode v = f.getValue();
            if (name.equals(METADATA)) {
                if (v.isNull()) continue;
                if (!v.isObject()) throw new CheckpointException(file + ": __metadata__ is not an object");
                for (Iterator<Map.Entry<String, JsonNode>> m = v.fields(); m.hasNext(); ) {
                    Map.Entry<String, JsonNode> kv = m.next();
                    if (!kv.getValue().isTextual()) throw new CheckpointException(file + ": __metadata__ value '" + kv.getKey() + "' is not a string");
                    metadata.put(kv.getKey(), kv.getValue().textValue());
                }
                continue;
            }
            String where = file + ": tensor '" + name + "'";
            if (!v.isObject()) throw new CheckpointException(where + " is not described by an object");
            JsonNode dt = v.get("dtype"), sh = v.get("shape"), off = v.get("data_offsets");
            if (dt == null || !dt.isTextual()) throw new CheckpointException(where + " has no dtype");
            DType dtype = DType.ofSafetensors(dt.textValue());
            if (dtype == null) throw new CheckpointException(where + " has unknown dtype '" + dt.textValue() + "'");
            if (sh == null || !sh.isArray()) throw new CheckpointException(where + " has no shape");
            long[] shape = new long[sh.size()];
            for (int i = 0; i < shape.length; i++) {
                if (!sh.get(i).canConvertToLong() || !sh.get(i).isIntegralNumber() || sh.get(i).longValue() < 0)
                    throw new CheckpointException(where + " has an invalid shape " + sh);
                shape[i] = sh.get(i).longValue();
            }
            if (off == null || !off.isArray() || off.size() != 2 || !off.get(0).isIntegralNumber() || !off.get(1).isIntegralNumber()
                    || !off.get(0).canConvertToLong() || !off.get(1).canConvertToLong())
                throw new CheckpointException(where + " has invalid data_offsets " + off);
            long begin = off.get(0).longValue(), end = off.get(1).longValue();
            if (begin < 0 || end < begin || end > dataLen)
                throw new CheckpointException(where + " has data_offsets [" + begin + ", " + end + "] outside the data ("
                        + dataLen + " bytes)");
            long bytes;
            try {
                bytes = Math.multiplyExact(HostTensor.numelOf(shape), (long) dtype.size());
            } catch (ArithmeticException e) {
                throw new CheckpointException(where + " has an overflowing shape " + sh);
            }
            if (bytes != end - begin)
                throw new CheckpointException(where + ": shape " + Arrays.toString(shape) + " of " + dt.textValue() + " needs " + bytes
                        + " bytes but data_offsets span " + (end - begin));
            specs.add(new Spec(name, dtype, shape, begin, end));
        }
        if (specs.isEmpty()) throw new CheckpointException(file + ": the safetensors file holds no tensors");
        // like the reference implementation: in offset order the tensors tile the data section exactly
        List<Spec> sorted = new ArrayList<>(specs);
        sorted.sort(Comparator.comparingLong(Spec::begin).thenComparingLong(Spec::end));
        long at = 0;
        Spec prev = null;
        for (Spec sp : sorted) {
            if (sp.begin() < at)
                throw new CheckpointException(file + ": tensors '" + prev.name() + "' and '" + sp.name() + "' overlap in the data");
            if (sp.begin() > at)
                throw new CheckpointException(file + ": " + (sp.begin() - at) + " bytes of the data section at offset " + at
                        + (prev == null ? " (before the first tensor)" : " (after tensor '" + prev.name() + "')")
                        + " belong to no tensor; the header does not describe the file (corrupt?)");
            at = sp.end();
            prev = sp;
        }
        if (at != dataLen)
            throw new CheckpointException(file + ": the tensors cover " + at + " bytes but the data section holds " + dataLen
                    + " (" + (dataLen - at) + " bytes after tensor '" + prev.name() + "'): truncated, extended or a wrong header length");

        ByteBuffer region = dataLen > 0 && dataLen <= Integer.MAX_VALUE
                ? ch.map(FileChannel.MapMode.READ_ONLY, dataStart, dataLen) : null;
        LinkedHashMap<String, HostTensor> tensors = new LinkedHashMap<>();
        for (Spec s : specs) {
            long len = s.end() - s.begin();
            if (len > Integer.MAX_VALUE) throw new CheckpointException(file + ": tensor '" + s.name() + "' is larger than 2 GiB");
            ByteBuffer buf;
            if (len == 0) buf = ByteBuffer.allocate(0);
            else if (region != null) buf = region.slice((int) s.begin(), (int) len);
            else buf = ch.map(FileChannel.MapMode.READ_ONLY, dataStart + s.begin(), len);
            tensors.put(s.name(), HostTensor.contiguous(s.dtype(), buf.order(ByteOrder.LITTLE_ENDIAN), s.shape()));
        }
        return new StateDict(tensors, metadata, ch);
    }

    private static ByteBuffer readFully(FileChannel ch, long pos, int len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
            if (ch.read(b, pos + b.position()) < 0) throw new IOException("unexpected end of file");
        }
        return b.flip();
    }

    // ------------------------------------------------------------------ writing

    /**
     * Writes {@code tensors} (in map order) atomically: floating tensors as F32, integer/bool tensors as I64.
     * A failure while writing leaves any existing {@code file} untouched and no temp file behind.
     */
    public static void write(Path file, Map<String, HostTensor> tensors, Map<String, String> metadata) throws IOException {
        List<Map.Entry<String, HostTensor>> list = new ArrayList<>(tensors.entrySet());
        if (list.isEmpty()) throw new IllegalArgumentException(file + ": no tensors to write (readers refuse such a file)");
        Map<String, Object> header = new LinkedHashMap<>();
        if (metadata != null && !metadata.isEmpty()) header.put(METADATA, new LinkedHashMap<>(metadata));
        long offset = 0;
        for (Map.Entry<String, HostTensor> e : list) {
            String name = e.getKey();
            HostTensor t = e.getValue();
            if (name == null || name.isEmpty() || name.equals(METADATA)) throw new IllegalArgumentException("invalid tensor name '" + name + "'");
            long bytes = t.numel() * t.dataType().size();
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("dtype", t.dataType().safetensorsName());
            d.put("shape", t.shape());
            d.put("data_offsets", new long[] {offset, offset + bytes});
            header.put(name, d);
            offset += bytes;
        }
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8;
        byte[] hdr = Arrays.copyOf(json, padded);
        Arrays.fill(hdr, json.length, padded, (byte) ' ');
        AtomicFiles.write(file, out -> {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, padded);
            out.write(len.array());
            out.write(hdr);
            for (Map.Entry<String, HostTensor> e : list) {
                HostTensor t = e.getValue();
                ByteBuffer data;
                try {
                    data = t.data();
                } catch (UncheckedIOException ex) {
                    throw new IOException("cannot get the data of tensor '" + e.getKey() + "': " + ex.getCause().getMessage(), ex.getCause());
                }
                if (data.remaining() != t.numel() * t.dataType().size())
                    throw new IOException("tensor '" + e.getKey() + "' gave " + data.remaining() + " bytes, expected "
                            + t.numel() * t.dataType().size());
                DjlTensors.writeBuffer(out, data);
            }
        });
    }

    /**
     * Writes DJL arrays (in map order) atomically: floating arrays as F32 (converted if needed), integer and
     * boolean arrays as I64. Each array is copied to the host only while it is being written.
     */
    public static void writeNDArrays(Path file, Map<String, NDArray> arrays, Map<String, String> metadata) throws IOException {
        write(file, DjlTensors.hostTensors(arrays), metadata);
    }
}
