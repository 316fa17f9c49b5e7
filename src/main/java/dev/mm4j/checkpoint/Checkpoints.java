package dev.mm4j.checkpoint;

import java.io.IOException;
import java.nio.file.Path;

/** Reads a state dict from a torch.save zip archive or a safetensors file, whichever {@code file} is. */
public final class Checkpoints {
    private Checkpoints() {}

    public static StateDict read(Path file) throws IOException {
        return switch (CheckpointFormat.detect(file)) {
            case TORCH_ZIP -> TorchCheckpoints.read(file);
            case SAFETENSORS -> SafeTensors.read(file);
        };
    }

    /**
     * Checks the whole file, also the parts a load does not read, and says what was checked in one line; any
     * corruption is a {@link CheckpointException}. A torch.save archive: every zip entry's size and CRC-32 and each
     * local header against the central directory (a load checks only the entries it reads). A safetensors file
     * (which has no checksum): the header, and that the tensors tile the data section exactly.
     */
    public static String verify(Path file) throws IOException {
        return switch (CheckpointFormat.detect(file)) {
            case TORCH_ZIP -> "integrity: all " + TorchCheckpoints.verifyArchive(file) + " zip entries pass their CRC-32 check";
            case SAFETENSORS -> {
                try (StateDict sd = SafeTensors.read(file)) {
                    yield "integrity: header valid, " + sd.size() + " tensors cover the data section exactly"
                            + " (the format has no checksum for the values)";
                }
            }
        };
    }
}
