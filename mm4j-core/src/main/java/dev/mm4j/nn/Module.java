package dev.mm4j.nn;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A building block with named parameters and named children, like {@code torch.nn.Module}: the
 * dotted path of a parameter ({@code encoder.layer.0.attention.query.weight}) is exactly its
 * PyTorch state-dict key, so loading a checkpoint is a lookup.
 */
public abstract class Module {
    private final Map<String, Parameter> parameters = new LinkedHashMap<>();
    private final Map<String, Module> children = new LinkedHashMap<>();
    private final Map<String, Parameter> tied = new LinkedHashMap<>();
    private boolean training = true;
    private Precision precision = Precision.FP32;

    /** Declares a parameter of this module. */
    protected final Parameter parameter(String name, Init init, long... shape) {
        Parameter p = new Parameter(new Shape(shape), init);
        if (parameters.putIfAbsent(name, p) != null || children.containsKey(name) || tied.containsKey(name)) {
            throw new IllegalArgumentException("duplicate name " + name + " in " + getClass().getSimpleName());
        }
        return p;
    }

    /**
     * Declares {@code name} as a second name of a parameter declared elsewhere in the model (PyTorch's tied
     * weights, e.g. {@code decoder.bias = self.bias}): the state dict holds it under both names
     * ({@link #stateDictParameters()}), the parameters to train hold it once ({@link #namedParameters()}).
     */
    protected final void tie(String name, Parameter p) {
        if (parameters.containsKey(name) || children.containsKey(name) || tied.putIfAbsent(name, p) != null) {
            throw new IllegalArgumentException("duplicate name " + name + " in " + getClass().getSimpleName());
        }
    }

    /** Declares a child module; its parameters appear under {@code name.}. */
    protected final <M extends Module> M child(String name, M module) {
        if (children.putIfAbsent(name, module) != null || parameters.containsKey(name) || tied.containsKey(name)) {
            throw new IllegalArgumentException("duplicate name " + name + " in " + getClass().getSimpleName());
        }
        return module;
    }

    /**
     * All parameters of this module and its children, keyed by dotted path, in declaration order; a tied
     * parameter once, under the name it was declared with (PyTorch's {@code named_parameters()}).
     */
    public final Map<String, Parameter> namedParameters() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        collect("", out, false);
        return Collections.unmodifiableMap(out);
    }

    /**
     * Every state-dict key and its parameter: {@link #namedParameters()} plus the second names of tied
     * parameters (PyTorch's {@code state_dict()} keys). What a checkpoint is loaded into and written from.
     */
    public final Map<String, Parameter> stateDictParameters() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        collect("", out, true);
        return Collections.unmodifiableMap(out);
    }

    private void collect(String prefix, Map<String, Parameter> out, boolean withTied) {
        parameters.forEach((n, p) -> out.put(prefix + n, p));
        if (withTied) {
            tied.forEach((n, p) -> out.put(prefix + n, p));
        }
        children.forEach((n, c) -> c.collect(prefix + n + ".", out, withTied));
    }

    /** Allocates every parameter on {@code manager}'s device with its initial values. */
    public final void allocate(NDManager manager) {
        for (Parameter p : namedParameters().values()) {
            p.allocate(manager);
        }
    }

    /** Number of scalars in all parameters. */
    public final long parameterCount() {
        return namedParameters().values().stream().mapToLong(Parameter::size).sum();
    }

    /** Train mode (dropout active) or eval mode, for this module and all children. */
    public final void setTraining(boolean training) {
        this.training = training;
        children.values().forEach(c -> c.setTraining(training));
    }

    public final boolean isTraining() {
        return training;
    }

    /** The arithmetic of the matrix products ({@link Precision}), for this module and all children. */
    public final void setPrecision(Precision precision) {
        this.precision = precision;
        children.values().forEach(c -> c.setPrecision(precision));
    }

    public final Precision precision() {
        return precision;
    }
}
