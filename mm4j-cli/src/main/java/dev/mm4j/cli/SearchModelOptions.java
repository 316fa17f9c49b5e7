package dev.mm4j.cli;

import ai.djl.Device;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.inference.Embedder;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The embedding model of classify/index/search: a bundle, or a checkpoint with its config (a picocli mixin). */
public final class SearchModelOptions {
    @Option(names = "--model", required = true, paramLabel = "DIR|FILE",
            description = "model bundle (OUT/model of finetune, classification or retrieval), or a checkpoint "
                    + "(.pt/.bin/.safetensors, *.index.json, Hugging Face folder)")
    Path model;

    @Option(names = "--config", paramLabel = "FILE",
            description = "for a checkpoint: FLAVA config (YAML/JSON of TorchMultimodal's kwargs; default: the Hugging Face "
                    + "folder's config.json, else FLAVA's full size)")
    Path config;

    Embedder open(Device device) throws IOException {
        return Embedder.open(model, config == null ? null : FlavaConfig.load(config), device);
    }
}
