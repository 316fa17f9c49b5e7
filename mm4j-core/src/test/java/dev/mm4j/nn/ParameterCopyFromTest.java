package dev.mm4j.nn;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

class ParameterCopyFromTest {
    @Test
    void copyFromCopiesAndDoesNotAliasTheValue() {
        try (NDManager m = NDManager.newBaseManager()) {
            Parameter p = new Parameter(new Shape(3), Init.zeros());
            p.allocate(m);
            try (NDManager caller = m.newSubManager()) {
                NDArray value = caller.create(new float[] {1f, 2f, 3f});
                p.copyFrom(value);
                value.addi(10f); // before the fix the parameter was an alias of value (and of its direct buffer)
                assertArrayEquals(new float[] {1f, 2f, 3f}, p.array().toFloatArray());
            }
            // the caller's manager is closed: the parameter still owns its data
            assertArrayEquals(new float[] {1f, 2f, 3f}, p.array().toFloatArray());

            NDArray ints = m.create(new long[] {4, 5, 6});
            p.copyFrom(ints);
            assertEquals(DataType.FLOAT32, p.array().getDataType());
            assertArrayEquals(new float[] {4f, 5f, 6f}, p.array().toFloatArray());
        }
    }
}
