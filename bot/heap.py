"""What a process builds at start-up lives as long as the process: moved out of the garbage collector's sight.

The app, the dialogs and the editions are about 250,000 objects in a web process (the worker adds the knowledge
bases). Python's full garbage collection walks every one of them each time it runs, and under load it ran every
few seconds: 100-280 ms each on the benchmark's machine, while every thread of the process waited, the webhook's
acknowledgements and the worker's answers too (`bench/webhook/notes.md`, third pass). `gc.freeze` moves what exists
after start-up into a generation no collection walks; later collections walk only what came after. A frozen
object that becomes garbage in a cycle is never freed, which is why this runs once start-up is done, after a
collection: what start-up leaves behind is its working set, not garbage. (Reference counting still frees frozen
objects; only cycles stay. A knowledge base built again because its faq.yaml changed under a running worker leaves
the frozen first one behind, ~15 MB, until the next start; the files change with deploys, which restart.)

Called by gunicorn's master after the app is built (gunicorn.conf.py: the workers it forks inherit the frozen
generation) and by the worker process before it starts answering (`bot.worker.run_worker`).
"""
from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collects once, then freezes everything left; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
