package dev.mm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import dev.mm4j.nn.Parameter;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StateDictLoaderTest {
    @TempDir Path tmp;

    static FlavaConfig tinyConfig() throws Exception {
        try (InputStream in = StateDictLoaderTest.class.getResourceAsStream("/fixtures/flava-tiny/expected.json")) {
            return FlavaConfig.fromJson(new ObjectMapper().readTree(in).get("config").toString());
        }
    }

    /** Loaded weights are the model's own copies: not views of the (read-only, mapped) file, nor of freed buffers. */
    @Test
    void loadedParametersOwnTheirDataForPtAndSafetensors() throws Exception {
        FlavaConfig config = tinyConfig();
        Path pt = tmp.resolve("w.pt"), st = tmp.resolve("w.safetensors");
        try (StateDict sd = TorchCheckpoints.read(TorchCheckpointsTest.fixture("flava_classification_views.pt"))) {
            TorchCheckpoints.write(pt, sd.asMap());
            SafeTensors.write(st, sd.asMap(), Map.of());
        }
        byte[] ptBytes = Files.readAllBytes(pt);
        for (Path file : new Path[] {pt, st, TorchCheckpointsTest.fixture("flava_classification_views.pt")}) {
            try (NDManager m = NDManager.newBaseManager()) {
                FlavaForClassification model = FlavaForClassification.create(config, m);
                StateDictLoader.Report r = StateDictLoader.load(model, file, true);
                assertTrue(r.isExact(), r.toString());
                System.gc();
                try (StateDict ref = Checkpoints.read(file)) {
                    for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
                        assertArrayEquals(ref.get(e.getKey()).toFloatArray(), e.getValue().array().toFloatArray(), 0f, e.getKey());
                        e.getValue().array().addi(1f); // in place: must not touch the file
                    }
                    for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
                        float[] want = ref.get(e.getKey()).toFloatArray();
                        for (int i = 0; i < want.length; i++) want[i] += 1f;
                        assertArrayEquals(want, e.getValue().array().toFloatArray(), 0f, e.getKey());
                    }
                }
            }
        }
        assertArrayEquals(ptBytes, Files.readAllBytes(pt));
    }
}
