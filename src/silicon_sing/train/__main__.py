"""``python -m silicon_sing.train``: the torchrun worker entry point (:func:`silicon_sing.train.worker.main`)."""

from .worker import main

if __name__ == "__main__":
    raise SystemExit(main())
