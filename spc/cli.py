"""`spc compile | verify | run | inspect`.

Imports only what parsing needs (torch and the compiler load inside each command), so that
`spc --help` and `spc --version` answer at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from spc import __version__, extras
from spc.errors import SpcError
from spc.files import load_array, write_atomically
from spc.runtime.backends import BACKENDS


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers, e.g. 16,1,64") from None
    if len(shape) < 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a time-major shape T,B,features... with positive sizes, e.g. 16,1,64")
    return shape


def load_input(compiled, path: str) -> np.ndarray:
    from spc.runtime.recording import check_input, input_warnings

    x = check_input(compiled.stepwise, load_array(path, "input"), f"input file {path}")
    for warning in input_warnings(compiled, x):
        print(f"warning: input file {path}: {warning}", file=sys.stderr)
    return x


def cmd_compile(args) -> int:
    import spc
    from spc.frontends.torch.loading import load_model

    from spc.compiler.summary import summary_table, xylo_summary

    if args.model.endswith(".nir"):
        if args.weights:
            raise SpcError("--weights", "does not apply to a NIR model (its weights are in the file)", "leave --weights out")
        model = args.model
    else:
        if args.dt is not None:
            raise SpcError("--dt", "applies to NIR files only (a torch model's neurons are stepwise already)", "leave --dt out")
        if args.input_shape is None:
            raise SpcError("--input-shape", "is needed to trace a torch model", "pass --input-shape T,B,features..., e.g. 16,1,64")
        model = load_model(args.model, args.weights)
    from spc.compiler.emit import parse_targets

    targets = None if args.target == "all" else parse_targets(args.target)
    compiled = spc.compile(
        model, args.input_shape, args.output, drop_future=args.drop_future, time_invariant=args.time_invariant, force=args.force, calib=args.calib, integer=not args.float_only, targets=targets, dt=args.dt,
        profile=args.profile, lava_stock_only=args.lava_stock_only, decay=args.decay, taps=args.taps, width=args.width, weight_bits=args.weight_bits, input_bits=args.input_bits, per_channel=args.per_channel,
        lava_stock=args.lava_stock,
    )
    print(summary_table(compiled))
    if xylo_summary(compiled):
        print(xylo_summary(compiled))
    if "nir" in compiled.manifest:
        step = compiled.manifest["nir"]
        print(f"NIR time step: dt = {step['dt']:g} s ({step['dt_from']})" + "".join(f"; node '{n}' {s:g} s (its metadata)" for n, s in step["node_dt"].items()))
    for a in compiled.manifest["approximations"]:
        print(f"approximation: layer '{a['layer']}' ({a['kind']}): {a['what']}")
    for warning in (compiled.quantization or {}).get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    for target, entry in compiled.manifest["targets"].items():
        if "skipped" in entry:
            print(f"note: target {target} skipped: {entry['skipped']}", file=sys.stderr)
        else:
            print(f"target {target}: {', '.join(entry['files'])}")
    print(f"wrote {args.output}")
    return 0


def cmd_verify(args) -> int:
    import spc
    from spc.frontends.torch.loading import load_model

    compiled = spc.load(args.compiled)
    x = load_input(compiled, args.input)
    labels = load_array(args.labels, "labels") if args.labels else None
    model = load_model(args.model, args.weights) if args.model else None
    if args.weights and not args.model:
        raise SpcError("--weights", "needs --model", "pass the model the weights belong to: --model file.py:factory")
    from spc.runtime.backends import parse_backends

    backends = parse_backends(args.backends) if args.backends else ()
    report = spc.verify(compiled, x, model=model, labels=labels, batch_size=args.batch_size, raster_sample=args.raster_sample, backends=backends)
    print(report.table())
    if args.json:
        write_atomically(Path(args.json), report.write_json)
    if args.report:
        from spc.report.html import write_html

        write_atomically(Path(args.report), lambda tmp: write_html(report.to_json(), tmp, f"spc verify {args.compiled}"))
        print(f"wrote {args.report}")
    return 0 if report.passed else 1


def cmd_run(args) -> int:
    import spc

    compiled = spc.load(args.compiled)
    y = spc.run(compiled, load_input(compiled, args.input), backend=args.backend)
    write_atomically(Path(args.output), lambda tmp: np.save(open(tmp, "wb"), y))
    print(f"wrote {args.output}: {y.dtype} {tuple(y.shape)}")
    return 0


def cmd_inspect(args) -> int:
    import spc
    from spc.compiler.summary import integer_summary, summary_table, xylo_summary

    compiled = spc.load(args.compiled)
    print(summary_table(compiled))
    print(integer_summary(compiled))
    if xylo_summary(compiled):
        print(xylo_summary(compiled))
    if args.input:
        from spc.runtime.metrics import activity
        from spc.text_table import render

        graph = compiled.integer or compiled.stepwise
        metrics = activity(graph, load_input(compiled, args.input))
        form = "integer" if compiled.integer is not None else "float stepwise"
        rows = [(name, f"{m['firing_rate']:.4f}" if "firing_rate" in m else "", f"{m['effective_ops']:,.0f}" if "effective_ops" in m else "", f"{m['dense_ops']:,.0f}" if "dense_ops" in m else "") for name, m in metrics["layers"].items()]
        print(f"activity of the {form} form on {args.input} ({metrics['samples']} samples, T = {metrics['steps']}; operations per sample):")
        print(render(("layer", "firing rate", "effective ops", "dense ops"), rows))
        ops = metrics["SynapticOperations"]
        sparsity = metrics["ActivationSparsity"]
        print(f"NeuroBench: ActivationSparsity {'-' if sparsity is None else f'{sparsity:.4f}'}, SynapticOperations Effective_ACs {ops['Effective_ACs']:,.0f}, Effective_MACs {ops['Effective_MACs']:,.0f}, Dense {ops['Dense']:,.0f}")
        if args.json:
            write_atomically(Path(args.json), lambda tmp: Path(tmp).write_text(__import__("json").dumps(metrics, indent=1) + "\n"))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spc", description="Compile parallel-trained spiking networks to stepwise form and prove the forms equal.")
    p.add_argument("--version", action="version", version=f"spc {__version__}")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    common = argparse.ArgumentParser(add_help=False)  # options accepted after the command too
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show Python tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True)

    def add_command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[common])

    c = add_command("compile", help="trace, check and lower a model into a compiled directory")
    c.add_argument("model", help="path/to/file.py:factory (a function returning the torch.nn.Module), or path/to/graph.nir")
    c.add_argument("-o", "--output", required=True, help="output directory")
    c.add_argument("--input-shape", type=_shape, help="time-major example input shape T,B,features... (e.g. 16,1,64); optional for a .nir model")
    c.add_argument("--weights", help="state_dict checkpoint (read with torch.load(weights_only=True))")
    c.add_argument("--drop-future", action="store_true", help="compile non-causal PSN layers by dropping their weights on future inputs (reported)")
    c.add_argument("--time-invariant", type=int, metavar="N", help="approximate time-indexed kernels (PSN, MaskedPSN, IPSU, RPSU) by N time-invariant terms (the current input and N-1 shift-decay exponentials) so the model runs for any length; reported, and measured by spc verify --model")
    c.add_argument("--dt", type=float, help="NIR input only: the time step in seconds the file's time constants are read with (default: the file's metadata \"dt\", else 1e-4 s; see the README for each exporter's)")
    c.add_argument("--force", action="store_true", help="replace the output directory if it exists")
    c.add_argument("--target", default="all", help="targets to emit: comma-separated from onnx, nir, lava, xylo (default: all that can express the model; a target named here must succeed), or none; xylo (SynSense Xylo Audio 2) implies --profile xylo")
    q = c.add_argument_group("integer form (docs/integer-spec.md)")
    q.add_argument("--profile", choices=["default", "xylo"], help="integer arithmetic: default (docs/integer-spec.md; ONNX, NIR, Lava) or xylo (SynSense Xylo's: dash decays, 16-bit states, graded spikes; the xylo target). Default: xylo when --target names xylo, else default")
    q.add_argument("--calib", help="calibration input [T, B, ...] (.npy) for choosing scales (default: random spike trains, with a warning)")
    q.add_argument("--decay", default="int12", choices=["int12", "shift"], help="int12: Loihi's v·(4096−d)>>12 (default); shift: v − (v >> n)")
    q.add_argument("--taps", default="int", choices=["int", "pow2"], help="FIR taps as 8-bit integers (default) or signed powers of two (multiplication-free)")
    q.add_argument("--width", type=int, default=24, help="state width in bits (default 24)")
    q.add_argument("--weight-bits", type=int, default=8, help="weight mantissa bits (default 8)")
    q.add_argument("--input-bits", type=int, default=8, help="bits of a quantized non-spike input (default 8)")
    q.add_argument("--per-channel", action="store_true", help="one weight exponent per output channel instead of per layer")
    q.add_argument("--float-only", action="store_true", help="skip the integer form")
    q.add_argument("--lava-stock", action="store_true", help="choose scales Lava's stock processes (Loihi 2) compute exactly: 8-bit bias mantissas, power-of-two FIR taps, input shifts and thresholds Loihi's neuron holds (docs/loihi2-stock.md)")
    q.add_argument("--lava-stock-only", action="store_true", help="as --lava-stock, and fail (exit 2) unless every layer runs on Lava's stock processes, listing those that cannot and why")
    c.set_defaults(func=cmd_compile)

    v = add_command("verify", help="run every form of a compiled model and compare them layer by layer")
    v.add_argument("compiled", help="directory written by spc compile")
    v.add_argument("--input", required=True, help="float32 array [T, B, ...] (.npy)")
    v.add_argument("--model", help="also compare against the original model: path/to/file.py:factory")
    v.add_argument("--weights", help="state_dict checkpoint for --model")
    v.add_argument("--labels", help="integer class labels [B] (.npy): report each form's accuracy")
    v.add_argument("--backends", help="also run these runtimes and compare them with spc's simulators, e.g. sim,onnx,lava (integer ones must agree bit for bit); see spc run --help")
    v.add_argument("--json", help="write the machine-readable report here")
    v.add_argument("--report", help="write a self-contained HTML report here (tables, rasters, error histograms, time constants)")
    v.add_argument("--raster-sample", type=int, default=0, help="the sample whose spike rasters the report shows (default 0)")
    v.add_argument("--batch-size", type=int, default=None, help="samples verified at once (default: as many as fit in about 1 GiB)")
    v.set_defaults(func=cmd_verify)

    r = add_command("run", help="run a compiled model on an input array")
    r.add_argument("compiled", help="directory written by spc compile")
    r.add_argument("--input", required=True, help="array [T, B, ...] (.npy)")
    r.add_argument("-o", "--output", required=True, help="where to write the output array (.npy)")
    r.add_argument("--backend", default="sim", choices=list(BACKENDS), help="; ".join(f"{name}: {b.description}" for name, b in BACKENDS.items()) + " (default: sim)")
    r.set_defaults(func=cmd_run)

    i = add_command("inspect", help="print a compiled model layer by layer")
    i.add_argument("compiled", help="directory written by spc compile")
    i.add_argument("--input", help="also measure firing rates and synaptic operations (NeuroBench names) on this input [T, B, ...] (.npy)")
    i.add_argument("--json", help="with --input: write the measurements here")
    i.set_defaults(func=cmd_inspect)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from spc.quiet import quiet_third_parties

    quiet_third_parties()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"spc {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as e:
        if args.debug:
            raise
        error = _user_error(e)
        if error is not None:
            print(f"spc {args.command}: error: {error}", file=sys.stderr)
            return error.exit_code
        print(f"spc {args.command}: internal error ({type(e).__name__}: {e})\n  this is a bug in spc: rerun with --debug for the traceback and report it", file=sys.stderr)
        return 3


def _user_error(e: Exception) -> SpcError | None:
    """The error to show for a problem with the user's input or installation (a missing extra);
    None for a bug in spc."""
    if isinstance(e, SpcError):
        return e
    if isinstance(e, ModuleNotFoundError):
        return extras.for_missing_module(e)
    return None


if __name__ == "__main__":
    sys.exit(main())
