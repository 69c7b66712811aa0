"""Memory readings for the Record: on a GPU, torch's allocated bytes (the precise leak signal)
and the device's used/total from NVML (pynvml, from nvidia-ml-py: what nvidia-smi shows, other
processes included), falling back to torch's mem_get_info; on a CPU, the process RSS.
`source` names what the numbers are, so the live view can say it."""

from __future__ import annotations

import os
import resource
from typing import Any

from distill_doctor.records import MEM_ALLOCATED, MEM_RSS, MEM_TOTAL, MEM_USED

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def process_rss() -> int:
    """Resident bytes now (Linux /proc), else the peak RSS (getrusage; kB on Linux)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class MemoryProbe:
    def __init__(self, device: Any) -> None:
        self.device = device
        self.cuda = getattr(device, "type", str(device)) == "cuda"
        self.nvml = None
        self.source = "process RSS"
        if self.cuda:
            self.source = "torch.cuda"
            try:
                import pynvml

                pynvml.nvmlInit()
                index = device.index if device.index is not None else 0
                self.nvml = pynvml.nvmlDeviceGetHandleByIndex(index)
                self.source = "pynvml + torch.cuda"
            except Exception:  # noqa: BLE001 - no NVML (driver, container): torch's numbers
                self.nvml = None

    def read(self) -> dict[str, int]:
        if not self.cuda:
            return {MEM_RSS: process_rss()}
        import torch

        reading = {MEM_ALLOCATED: torch.cuda.memory_allocated(self.device)}
        if self.nvml is not None:
            import pynvml

            info = pynvml.nvmlDeviceGetMemoryInfo(self.nvml)
            reading.update({MEM_USED: int(info.used), MEM_TOTAL: int(info.total)})
        else:
            free, total = torch.cuda.mem_get_info(self.device)
            reading.update({MEM_USED: total - free, MEM_TOTAL: total})
        reading["mem_peak_allocated_bytes"] = torch.cuda.max_memory_allocated(self.device)
        return reading
