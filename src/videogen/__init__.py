"""videogen: text, image and video to video with open diffusion models."""

import os

__version__ = "0.1.0"

#: PyTorch's switch for allocating CPU tensors of 2 MB and more on transparent huge pages. torch reads
#: it once, at its first CPU allocation, so it is set here, before the rest of videogen imports torch.
#: It measured 10-15% off the VAE decode on the CPU (fewer page faults on the large activations;
#: BENCHMARKS.md). A value already in the environment wins: ``THP_MEM_ALLOC_ENABLE=0`` switches it off.
HUGE_PAGES_VARIABLE = "THP_MEM_ALLOC_ENABLE"
os.environ.setdefault(HUGE_PAGES_VARIABLE, "1")
#: whether torch allocates on huge pages here (unless it allocated before videogen was imported)
HUGE_PAGES = os.environ[HUGE_PAGES_VARIABLE] == "1"
