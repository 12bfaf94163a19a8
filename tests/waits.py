"""How long a test waits for a subprocess, a worker or a page run before calling it hung.

Use from a test module: ``from waits import HANG_S``. The bound only stops a hang; it is
never what a test asserts, so it sits far above any honest run: on 2 shared cores beside
other jobs the slowest step of the suite (two demo builds) took 317 s, where it takes
about 40 s alone, and a diagnose took 304 s against 16 s alone before issue 20's thread
choice. Waits that can follow an event (a process's exit, a run's status) poll for it and
return as soon as it happens, so a generous bound costs nothing when nothing hangs.
"""

#: Seconds before a wait gives up and the test fails as hung.
HANG_S = 1800
