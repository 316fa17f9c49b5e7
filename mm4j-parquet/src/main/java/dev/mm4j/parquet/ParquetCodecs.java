package dev.mm4j.parquet;

import io.airlift.compress.Compressor;
import io.airlift.compress.Decompressor;
import io.airlift.compress.lz4.Lz4Compressor;
import io.airlift.compress.lz4.Lz4Decompressor;
import io.airlift.compress.snappy.SnappyCompressor;
import io.airlift.compress.snappy.SnappyDecompressor;
import io.airlift.compress.zstd.ZstdCompressor;
import io.airlift.compress.zstd.ZstdDecompressor;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.function.Supplier;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;
import org.apache.parquet.bytes.BytesInput;
import org.apache.parquet.compression.CompressionCodecFactory;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;

/**
 * Parquet page codecs in pure Java (aircompressor for snappy / zstd / lz4_raw, java.util.zip for gzip),
 * so neither Hadoop's codec machinery (which wants a Hadoop {@code Configuration} and its XML stack) nor
 * the native snappy-java / zstd-jni libraries are needed. Stateless: one instance serves every reader.
 */
final class ParquetCodecs implements CompressionCodecFactory {
    static final ParquetCodecs INSTANCE = new ParquetCodecs();

    private ParquetCodecs() {}

    @Override
    public BytesInputCompressor getCompressor(CompressionCodecName codec) {
        return switch (codec) {
            case UNCOMPRESSED -> compressor(codec, bytes -> bytes);
            case SNAPPY -> blockCompressor(codec, SnappyCompressor::new);
            case ZSTD -> blockCompressor(codec, ZstdCompressor::new);
            case LZ4_RAW -> blockCompressor(codec, Lz4Compressor::new);
            case GZIP -> compressor(codec, bytes -> {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
                    bytes.writeAllTo(gz);
                }
                return BytesInput.from(out.toByteArray());
            });
            default -> throw new UnsupportedOperationException("parquet codec " + codec + " is not supported (snappy, zstd, gzip, lz4_raw, uncompressed are)");
        };
    }

    @Override
    public BytesInputDecompressor getDecompressor(CompressionCodecName codec) {
        return switch (codec) {
            case UNCOMPRESSED -> decompressor((in, size) -> in);
            case SNAPPY -> blockDecompressor(SnappyDecompressor::new);
            case ZSTD -> blockDecompressor(ZstdDecompressor::new);
            case LZ4_RAW -> blockDecompressor(Lz4Decompressor::new);
            case GZIP -> decompressor((in, size) -> {
                byte[] out = new byte[size];
                try (InputStream gz = new GZIPInputStream(new ByteArrayInputStream(in.toByteArray()))) {
                    int n = gz.readNBytes(out, 0, size);
                    if (n != size) {
                        throw new IOException("gzip page: expected " + size + " bytes, got " + n);
                    }
                }
                return BytesInput.from(out);
            });
            default -> throw new UnsupportedOperationException("parquet codec " + codec + " is not supported (snappy, zstd, gzip, lz4_raw, uncompressed are)");
        };
    }

    @Override
    public void release() {}

    private interface Transform {
        BytesInput apply(BytesInput in) throws IOException;
    }

    private interface Inflate {
        BytesInput apply(BytesInput in, int uncompressedSize) throws IOException;
    }

    private static BytesInputCompressor compressor(CompressionCodecName codec, Transform t) {
        return new BytesInputCompressor() {
            @Override
            public BytesInput compress(BytesInput bytes) throws IOException {
                return t.apply(bytes);
            }

            @Override
            public CompressionCodecName getCodecName() {
                return codec;
            }

            @Override
            public void release() {}
        };
    }

    private static BytesInputCompressor blockCompressor(CompressionCodecName codec, Supplier<Compressor> make) {
        return compressor(codec, bytes -> {
            byte[] in = bytes.toByteArray();
            Compressor c = make.get();
            byte[] out = new byte[c.maxCompressedLength(in.length)];
            int n = c.compress(in, 0, in.length, out, 0, out.length);
            return BytesInput.from(out, 0, n);
        });
    }

    private static BytesInputDecompressor decompressor(Inflate f) {
        return new BytesInputDecompressor() {
            @Override
            public BytesInput decompress(BytesInput bytes, int uncompressedSize) throws IOException {
                return f.apply(bytes, uncompressedSize);
            }

            @Override
            public void decompress(ByteBuffer input, int compressedSize, ByteBuffer output, int uncompressedSize) throws IOException {
                byte[] in = new byte[compressedSize];
                input.get(in);
                output.put(f.apply(BytesInput.from(in), uncompressedSize).toByteArray());
            }

            @Override
            public void release() {}
        };
    }

    private static BytesInputDecompressor blockDecompressor(Supplier<Decompressor> make) {
        return decompressor((bytes, size) -> {
            byte[] in = bytes.toByteArray();
            byte[] out = new byte[size];
            try {
                int n = make.get().decompress(in, 0, in.length, out, 0, size);
                if (n != size) {
                    throw new IOException("corrupt parquet page: expected " + size + " bytes, decompressed " + n);
                }
            } catch (io.airlift.compress.MalformedInputException e) {
                throw new IOException("corrupt compressed parquet page: " + e.getMessage(), e);
            }
            return BytesInput.from(out);
        });
    }
}
