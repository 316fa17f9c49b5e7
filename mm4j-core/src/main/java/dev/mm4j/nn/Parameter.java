package dev.mm4j.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * A trainable tensor of a {@link Module}: its shape, how it starts, and (once the module is
 * allocated) its NDArray, owned by the model's NDManager.
 */
public final class Parameter {
    private final Shape shape;
    private final Init init;
    private NDArray array;

    Parameter(Shape shape, Init init) {
        this.shape = shape;
        this.init = init;
    }

    public Shape shape() {
        return shape;
    }

    /** The current value (throws if the module was never allocated). */
    public NDArray array() {
        if (array == null) {
            throw new IllegalStateException("parameter of shape " + shape + " is not allocated");
        }
        return array;
    }

    /** Allocates the array on {@code manager} (its device) with this parameter's initial values. */
    void allocate(NDManager manager) {
        if (array != null) {
            array.close();
        }
        array = init.create(manager, shape);
        NDScope.unregister(array); // owned by the model, not by an enclosing step scope
        array.setRequiresGradient(true);
    }

    /**
     * Replaces the value by a copy of {@code value} (same shape required), keeping the array owned by
     * the model's manager; {@code value} stays owned by its caller.
     */
    public void copyFrom(NDArray value) {
        if (!value.getShape().equals(shape)) {
            throw new IllegalArgumentException("shape " + value.getShape() + " does not match " + shape);
        }
        NDArray target = array();
        NDManager owner = target.getManager();
        NDArray copy;
        try (NDManager tmp = owner.newSubManager()) {
            // A real copy: libtorch's to(device) returns an alias when the device and type already match (DJL
            // ignores toDevice's copy flag), and an alias of an array made from Java data shares that data's
            // direct buffer, which the GC frees once the value is gone, leaving the parameter dangling.
            // Flattened first, so that the copy is contiguous whatever the value's strides (a clone keeps a
            // transposed tensor's strides): the optimizer updates parameters in their own memory, row-major.
            NDArray flat = value.reshape(-1);
            flat.attach(tmp);
            NDArray onDevice = value.getDevice().equals(owner.getDevice())
                    ? flat.duplicate() : flat.toDevice(owner.getDevice(), true);
            onDevice.attach(tmp);
            NDArray typed = onDevice.getDataType() == DataType.FLOAT32 ? onDevice : onDevice.toType(DataType.FLOAT32, true);
            typed.attach(tmp);
            copy = typed.reshape(shape);
            copy.attach(owner); // survives tmp; everything else made here is closed with it
        }
        NDScope.unregister(copy); // owned by the model, not by an enclosing step scope
        target.close();
        array = copy;
        array.setRequiresGradient(true);
    }

    /**
     * Drops the gradient (PyTorch's {@code p.grad = None}): the array is replaced by an alias of the same
     * memory without one, so the gradient's memory is freed once nothing refers to the old array (the
     * step's autograd graph refers to it until the step closes). The next backward pass allocates a fresh
     * gradient instead of adding into zeros.
     */
    public void releaseGradient() {
        NDArray old = array();
        NDArray alias = old.stopGradient(); // libtorch detach(): same storage, no autograd state
        NDScope.unregister(alias); // owned by the model, not by an enclosing step scope
        alias.setRequiresGradient(true);
        array = alias;
        old.close();
    }

    public long size() {
        return shape.size();
    }
}
