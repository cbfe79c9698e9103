"""Process sandbox for untrusted code: zygotes that fork one isolated candidate process per sample.

Processes ("J" is trusted, "U" runs candidate code):

    verifier  --socket-->  zygote x workers (+ spares)     pool.py, zygote.py
                             fresh interpreter, stdlib pre-imported; namespaces mode: own user,
                             pid, mount, net, ipc and uts namespaces, root = the minimal
                             read-only tree of rootfs.py, no host files left in its namespace
        zygote = J           judges one sample at a time (code_runner.judge, trusted code only)
            J --fork--> U    candidate.py: pid 1 of a fresh pid namespace, no capabilities,
                             rlimits, candidate uid; killing it kills everything it started

Modules, one concern each: ``libc`` (the Linux calls, via ctypes), ``rootfs`` (the candidates'
root filesystem), ``candidate`` (one candidate process), ``zygote`` (the worker process),
``pool`` (the verifier's side). Everything on a socket is a ``code_wire`` frame.

Isolation modes (``VerifierSettings.isolation``):
  * ``namespaces`` (and ``auto``, the default, which means the same): the above, as root or as
    an ordinary user (user namespaces). Where the kernel refuses them, ``Pool`` raises
    ``IsolationUnavailable`` saying why and what to set; it never falls back on its own.
  * ``rlimits``, only when asked for: no namespaces (see ``candidate``).
"""

__all__ = ["IsolationUnavailable", "Pool"]


def __getattr__(name: str):
    # the verifier's side only: zygotes import the other modules and never load the pool's
    if name in __all__:
        from pidistill.verifiers.sandbox import pool

        return getattr(pool, name)
    raise AttributeError(name)
