#!/usr/bin/env python3
"""Start-up time of a server: from exec to its first 200 on a URL, polled every 5 ms.

    startup_probe.py URL LOGFILE COMMAND [ARG...]

Starts COMMAND (environment and working directory inherited; stdout and stderr to LOGFILE),
requests URL on a new connection every 5 ms until one answers 200, prints the elapsed
milliseconds (from just before the exec) on stdout, then stops the server (SIGTERM, SIGKILL
after 10 s). Exit status 1 if the server exits first or no 200 comes within 30 s.
"""
import http.client
import subprocess
import sys
import time
import urllib.parse

POLL_S = 0.005
GIVE_UP_S = 30.0


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    if len(sys.argv) < 4:
        print("usage: startup_probe.py URL LOGFILE COMMAND [ARG...]", file=sys.stderr)
        return 2
    url = urllib.parse.urlsplit(sys.argv[1])
    host, port, path = url.hostname, url.port or 80, url.path or "/"
    with open(sys.argv[2], "ab") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(sys.argv[3:], stdout=log, stderr=subprocess.STDOUT)
        try:
            while True:
                elapsed = time.perf_counter() - started
                if proc.poll() is not None:
                    print(f"startup_probe.py: server exited with {proc.returncode} before answering",
                          file=sys.stderr)
                    return 1
                if elapsed > GIVE_UP_S:
                    print(f"startup_probe.py: no 200 from {sys.argv[1]} within {GIVE_UP_S:.0f} s",
                          file=sys.stderr)
                    return 1
                conn = http.client.HTTPConnection(host, port, timeout=2)
                try:
                    conn.request("GET", path)
                    if conn.getresponse().status == 200:
                        elapsed = time.perf_counter() - started
                        print(f"{elapsed * 1000:.1f}")
                        return 0
                except OSError:
                    pass  # not listening yet (refused, reset) or not answering yet
                finally:
                    conn.close()
                time.sleep(POLL_S)
        finally:
            stop(proc)


if __name__ == "__main__":
    sys.exit(main())
