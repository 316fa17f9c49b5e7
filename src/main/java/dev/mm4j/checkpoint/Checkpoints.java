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
}
