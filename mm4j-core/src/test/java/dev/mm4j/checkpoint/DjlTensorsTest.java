package dev.mm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DjlTensorsTest {
    @TempDir Path tmp;

    @Test
    void fixtureTensorsBecomeNDArraysAndRoundTripThroughSafetensors() throws IOException {
        try (NDManager m = NDManager.newBaseManager();
             StateDict sd = TorchCheckpoints.read(TorchCheckpointsTest.fixture("flava_classification_views.pt"))) {
            Map<String, NDArray> arrays = DjlTensors.toNDArrays(sd, m);
            assertEquals(131, arrays.size());
            NDArray ff = arrays.get("model.mm_encoder.encoder.layer.0.feedforward.model.0.weight"); // column-major in the file
            assertEquals(new Shape(64, 32), ff.getShape());
            assertEquals(DataType.FLOAT32, ff.getDataType());
            assertEquals(-0.1628999561071396f, ff.getFloat(10, 3));
            assertEquals(0.09279697388410568f, ff.getFloat(63, 31));
            assertEquals(m.getDevice(), ff.getDevice());
            // in-place update must not touch the (read-only, mapped) file
            ff.addi(1f);
            assertEquals(-0.1628999561071396f, sd.get("model.mm_encoder.encoder.layer.0.feedforward.model.0.weight").toFloatArray()[10 * 32 + 3]);

            Map<String, NDArray> out = new LinkedHashMap<>();
            out.put("w", arrays.get("classifier.model.3.weight"));
            out.put("half", m.create(new float[] {1.5f, -3f}).toType(DataType.FLOAT16, false));
            out.put("ids", m.create(new long[] {3, -4, 5}, new Shape(1, 3)));
            out.put("mask", m.create(new boolean[] {true, false}));
            Path p = tmp.resolve("out.safetensors");
            SafeTensors.writeNDArrays(p, out, Map.of("from", "djl"));
            try (StateDict back = SafeTensors.read(p)) {
                assertArrayEquals(sd.get("classifier.model.3.weight").toFloatArray(), back.get("w").toFloatArray(), 0f);
                assertArrayEquals(new float[] {1.5f, -3f}, back.get("half").toFloatArray(), 0f);
                assertEquals(DType.INT64, back.get("ids").dtype());
                assertArrayEquals(new long[] {1, 3}, back.get("ids").shape());
                assertArrayEquals(new long[] {3, -4, 5}, back.get("ids").toLongArray());
                assertArrayEquals(new long[] {1, 0}, back.get("mask").toLongArray());
                NDArray ids = DjlTensors.toNDArray(back.get("ids"), m);
                assertEquals(DataType.INT64, ids.getDataType());
                assertArrayEquals(new long[] {3, -4, 5}, ids.toLongArray());
            }
        }
    }
}
