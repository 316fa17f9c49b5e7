package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.mm4j.flava.FlavaConfig;
import java.io.InputStream;
import java.util.Map;
import org.junit.jupiter.api.Test;

class FinetuneSettingsTest {
    @Test
    void demoPresetCarriesTheDemoModel() throws Exception {
        Map<?, ?> file;
        try (InputStream in = FinetuneSettings.class.getResourceAsStream("/dev/mm4j/demo-model.yaml")) {
            file = new ObjectMapper(new YAMLFactory()).readValue(in, Map.class);
        }
        FinetuneSettings s = FinetuneSettings.preset("demo");
        assertEquals(file, s.model);
        assertNotSame(s.model, FinetuneSettings.preset("demo").model, "each preset gets its own copy");
        FlavaConfig c = s.flavaConfig(40);
        assertEquals(((Number) file.get("image_size")).intValue(), c.imageSize);
        assertEquals(((Number) file.get("patch_size")).intValue(), c.patchSize);
        assertEquals(((Number) file.get("image_hidden_size")).intValue(), c.imageHiddenSize);
        assertEquals(40, c.numClasses);
        // it survives the settings.yaml round trip that every run writes
        java.nio.file.Path saved = java.nio.file.Files.createTempFile("settings", ".yaml");
        java.nio.file.Files.writeString(saved, s.toYaml());
        assertEquals(s.model, FinetuneSettings.preset("default").merge(saved).model);
        java.nio.file.Files.delete(saved);
        // the other presets keep the full-size model
        assertNull(FinetuneSettings.preset("tutorial").model);
        assertEquals(224, FinetuneSettings.preset("torchmultimodal").flavaConfig(3997).imageSize);
    }

    @Test
    void demoRetrievalPresetIsTheDemoTrainedContrastivelyOnEveryCore() throws Exception {
        FinetuneSettings r = Preset.DEMO_RETRIEVAL.settings();
        FinetuneSettings demo = FinetuneSettings.preset("demo");
        assertEquals(true, r.isRetrieval());
        assertEquals(false, demo.isRetrieval());
        assertEquals(demo.model, r.model);
        assertEquals(96, r.batchSize);
        assertEquals(1200, r.maxSteps, "its own budget (the VQA demo trains 1600 steps)");
        assertEquals(1600, demo.maxSteps);
        assertEquals(demo.lr, r.lr);
        assertEquals(demo.schedule, r.schedule);
        assertEquals(0, r.threads, "all cores");
        assertEquals(1, demo.threads, "the classification demo leaves a core to its loader thread");
        // its name survives the settings.yaml round trip (task included)
        java.nio.file.Path saved = java.nio.file.Files.createTempFile("settings", ".yaml");
        java.nio.file.Files.writeString(saved, r.toYaml());
        assertEquals(true, FinetuneSettings.preset("default").merge(saved).isRetrieval());
        java.nio.file.Files.delete(saved);
    }
}
