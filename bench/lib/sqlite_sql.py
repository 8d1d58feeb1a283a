#!/usr/bin/env python3
"""Run SQL from stdin on a SQLite file, like `sqlite3 -batch DB < script` (no sqlite3 CLI needed).

    python3 bench/lib/sqlite_sql.py /path/to/tessera.db <<< "SELECT count(*) FROM sessions;"

Statements run one by one in autocommit mode (put BEGIN/COMMIT in the script for a transaction);
every row a statement returns is printed, its columns joined by '|'. Waits up to 60 s for a lock
(the server may be writing). Exit status 1 with the SQLite error on stderr if a statement fails.
"""
import sqlite3
import sys


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: sqlite_sql.py DATABASE_FILE < script.sql", file=sys.stderr)
        return 2
    conn = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
    statement = ""
    try:
        for line in sys.stdin:
            statement += line
            if not sqlite3.complete_statement(statement):
                continue
            for row in conn.execute(statement):
                print("|".join("" if v is None else str(v) for v in row))
            statement = ""
        if statement.strip():
            raise sqlite3.OperationalError(f"incomplete statement at the end: {statement.strip()[:80]}")
    except sqlite3.Error as error:
        print(f"sqlite_sql.py: {error} in: {statement.strip()[:200]}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
