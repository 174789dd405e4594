"""One module per search method, one per notebook: what is specific to each paper.

| notebook | module | method |
|---|---|---|
| 01-search-space-cdf | :mod:`~helpers.methods.tinynas` | TinyNAS stage 1 (MCUNet): space grid, FLOPs CDFs |
| 02-aging-evolution | :mod:`~helpers.methods.munas` | μNAS: candidates, space adapter, evaluator |
| 03-sparse-pruning | :mod:`~helpers.methods.sparse` | SpArSe: objectives, fixed-length space, evaluator |
| 04-micronets-dnas | :mod:`~helpers.methods.micronets` (+ ``micronets_latency``) | MicroNets DNAS, latency proxy |
| 05-once-for-all | :mod:`~helpers.methods.ofa` | OFA supernet, progressive shrinking, subnet space |

The algorithms they drive (aging evolution, BO, evolution) are in :mod:`helpers.search`.
Import the module you need: ``from helpers.methods import munas``.
May import every layer below (data, targets, spaces, resources, engine, deploy, train,
prune, search); never ``compare``, ``plots``, ``run``-level bookkeeping above them.
"""
