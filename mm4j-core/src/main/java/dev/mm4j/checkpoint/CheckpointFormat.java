package dev.mm4j.checkpoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** The checkpoint formats we read, told apart by their first bytes. */
public enum CheckpointFormat {
    /** {@code torch.save} zip archive (starts with {@code PK\3\4}). */
    TORCH_ZIP,
    /** Legacy {@code torch.save} (before PyTorch 1.6, or {@code _use_new_zipfile_serialization=False}): starts with a pickle. */
    TORCH_LEGACY,
    /** Hugging Face safetensors (8-byte header length, then a JSON object). */
    SAFETENSORS;

    /** Detects the format of {@code file}, or throws a {@link CheckpointException} saying what it is not. */
    public static CheckpointFormat detect(Path file) throws IOException {
        if (Files.isDirectory(file)) throw new CheckpointException(file + ": is a folder, not a checkpoint file");
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer b = ByteBuffer.allocate(9).order(ByteOrder.LITTLE_ENDIAN);
            while (b.hasRemaining() && ch.read(b, b.position()) > 0) { }
            int got = b.position();
            if (got >= 4 && b.getInt(0) == 0x04034b50) return TORCH_ZIP;
            if (got >= 1 && (b.get(0) & 0xff) == 0x80) return TORCH_LEGACY; // PROTO: told from any other pickle when read
            if (got == 9) {
                long n = b.getLong(0);
                if (n >= 2 && n <= SafeTensors.MAX_HEADER && n <= size - 8 && b.get(8) == '{') return SAFETENSORS;
            }
            throw new CheckpointException(file + ": not a checkpoint we can read: neither a torch.save file nor a"
                    + " safetensors file");
        } catch (NoSuchFileException e) {
            throw new CheckpointException(file + ": no such file", e);
        } catch (CheckpointException e) {
            throw e;
        } catch (IOException e) {
            throw new CheckpointException(file + ": cannot read: " + e.getMessage(), e);
        }
    }
}
