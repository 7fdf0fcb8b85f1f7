"""`irnet-infer eval model.irb --data imagefolder:DIR --ray`: the same evaluation as one-process
`eval` (DIR/val/<class>/*, classes numbered as DIR/train's sorted folders), run on Ray Data by
irnet_infer.ray. Without --address it starts a local Ray and shuts it down afterwards."""
import logging
import os
import time

from irnet_infer import datasets
from irnet_infer.model import Model

MAX_ERRORS_SHOWN = 10


def run(args):
    kind, root = datasets.parse_source(args.data)
    if kind != "imagefolder":
        raise ValueError("--ray evaluates image folders only: use --data imagefolder:DIR")
    threads = 1 if args.threads is None else args.threads
    for name, value in (("--threads", threads), ("--actors", args.actors), ("--limit", args.limit)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    # Bad files and folders fail here, before Ray starts; the listing also fixes the class
    # numbering, the same as one-process eval's.
    classes_count = Model(args.model, num_threads=1).output_shape[-1]
    _, _, classes = datasets.list_image_folder(root, "val")
    val = os.path.join(root, "val")

    from irnet_infer import ray as irnet_ray  # first: its ImportError says what to install
    import ray
    started = not ray.is_initialized()
    if started:
        ray.init(address=args.address or "local", logging_level=logging.WARNING)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = not args.no_progress
        actors = args.actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        images = irnet_ray.read_image_folder(val, classes)
        if args.limit is not None:
            images = images.limit(args.limit)
        predictions = irnet_ray.predict(images, args.model, actors=actors, threads_per_actor=threads,
                                        batch_size=args.batch_size, top_k=5)
        t0 = time.perf_counter()
        r = irnet_ray.accuracy(predictions, max_errors=MAX_ERRORS_SHOWN)
        seconds = time.perf_counter() - t0
    finally:
        if started:
            ray.shutdown()

    done = r["count"] + r["errors"] + r["unlabelled"]
    line = f"{args.model} on {args.data}: {r['count']} images"
    if r["count"]:
        line += f"  top-1 {r['top1']:.2%}"
        if classes_count > 5 and r["top5"] is not None:
            line += f"  top-5 {r['top5']:.2%}"
    line += (f"  {done / seconds:.0f} images/s end to end (Ray: {actors} actors x {threads} "
             f"threads, batch {args.batch_size})")
    print(line)
    if r["errors"]:
        print(f"{r['errors']} images could not be read:")
        for path, error in r["error_examples"]:
            print(f"  {path}: {error}")
        if r["errors"] > len(r["error_examples"]):
            print(f"  ... and {r['errors'] - len(r['error_examples'])} more")
        return 1
    return 0
