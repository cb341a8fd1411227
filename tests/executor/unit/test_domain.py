"""Pure logic: SQL splitting, redaction, outputs files, step environments, log tails."""

from __future__ import annotations

import pytest

from sous_contracts.common import DatasetRef, Outputs
from sous_executor.domain.environment import step_environment
from sous_executor.domain.outcome import exit_error
from sous_executor.domain.outputs import OutputsError, from_mapping, merge, parse_outputs_file
from sous_executor.domain.redact import Redactor
from sous_executor.domain.sql_script import split_statements, transaction_command
from sous_executor.domain.tail import LogTail


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("SELECT 1", ["SELECT 1"]),
        ("SELECT 1;", ["SELECT 1"]),
        ("SELECT 1; SELECT 2;;", ["SELECT 1", " SELECT 2"]),
        ("SELECT ';' ; SELECT 'it''s;'", ["SELECT ';' ", " SELECT 'it''s;'"]),
        ('SELECT 1 AS "a;b"; SELECT 2', ['SELECT 1 AS "a;b"', " SELECT 2"]),
        ("SELECT $$;$$; SELECT $f$ $$;$$ $f$", ["SELECT $$;$$", " SELECT $f$ $$;$$ $f$"]),
        ("SELECT $1; SELECT 2", ["SELECT $1", " SELECT 2"]),
        ("-- c; c\nSELECT 1; -- only a comment;", ["-- c; c\nSELECT 1"]),
        ("/* a; /* nested; */ b; */ SELECT 1", ["/* a; /* nested; */ b; */ SELECT 1"]),
        ("  ;\n  ; ", []),
    ],
)
def test_split_statements(script: str, expected: list[str]) -> None:
    statements = split_statements(script)
    assert [s.sql for s in statements] == expected
    for s in statements:
        assert script[s.offset : s.offset + len(s.sql)] == s.sql


@pytest.mark.parametrize(
    ("statement", "command"),
    [
        ("COMMIT", "COMMIT"),
        ("\n  -- done\n commit and chain", "COMMIT"),
        ("/* then */ BEGIN", "BEGIN"),
        ("start  transaction isolation level serializable", "START TRANSACTION"),
        ("END", "END"),
        ("abort", "ABORT"),
        ("ROLLBACK", "ROLLBACK"),
        ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
        ("ROLLBACK TO SAVEPOINT s", None),
        ("rollback to s", None),
        ("SAVEPOINT s", None),
        ("PREPARE q AS SELECT 1", None),
        ("SELECT 'COMMIT'", None),
        ("UPDATE t SET end_date = now()", None),
        ("DO $$ BEGIN PERFORM 1; END $$", None),
        ("-- COMMIT", None),
    ],
)
def test_transaction_commands_are_spotted(statement: str, command: str | None) -> None:
    assert transaction_command(statement) == command


def test_redactor_masks_longest_first_and_inside_structures() -> None:
    r = Redactor(["abc", "abcdef", ""])
    assert r.text("x abcdef y abc") == "x *** y ***"
    assert r.data({"k": ["abc", 1, {"abc": None}]}) == {"k": ["***", 1, {"***": None}]}
    assert not Redactor()


def test_redactor_masks_json_escaped_forms() -> None:
    r = Redactor(['pa"ss\\word'])
    assert r.text('{"p": "pa\\"ss\\\\word"}') == '{"p": "***"}'


def test_outputs_file_json_and_key_value_lines() -> None:
    parsed = parse_outputs_file('{"values": {"a": 1}, "datasets": [{"uri": "s3://b/k"}]}')
    assert parsed == Outputs(values={"a": 1}, datasets=[DatasetRef(uri="s3://b/k")])
    assert parse_outputs_file('{"a": 1}') == Outputs(values={"a": 1})
    lines = parse_outputs_file('rows = 12\n# note\nname=orders\nflags=[1, 2]\nq="x=y"\n')
    assert lines.values == {"rows": 12, "name": "orders", "flags": [1, 2], "q": "x=y"}
    assert parse_outputs_file("  \n") == Outputs()


@pytest.mark.parametrize("text", ["{not json", "just a line", "=1"])
def test_outputs_file_errors_name_the_problem(text: str) -> None:
    with pytest.raises(OutputsError):
        parse_outputs_file(text)


def test_mapping_and_merge() -> None:
    with pytest.raises(OutputsError):
        from_mapping([1, 2])
    with pytest.raises(OutputsError):
        from_mapping({"datasets": [{"nope": 1}]})
    merged = merge(Outputs(values={"a": 1, "b": 1}), Outputs(values={"b": 2}))
    assert merged.values == {"a": 1, "b": 2}


def test_step_environment_encodes_params_and_names() -> None:
    env = step_environment(
        base={"PATH": "/bin", "SOUS_PARAM_DAY": "overridden"},
        params={"day": "2026-01-01", "n": 3, "opts": {"x": True}, "target-schema": "f"},
        connections={"warehouse": "dsn"},
        secrets={"api.token": "t"},
        ids={"SOUS_STEP": "load"},
        extra={"MY_VAR": "v"},
    )
    assert env == {
        "PATH": "/bin",
        "MY_VAR": "v",
        "SOUS_PARAM_DAY": "2026-01-01",
        "SOUS_PARAM_N": "3",
        "SOUS_PARAM_OPTS": '{"x": true}',
        "SOUS_PARAM_TARGET_SCHEMA": "f",
        "SOUS_CONN_WAREHOUSE": "dsn",
        "SOUS_SECRET_API_TOKEN": "t",
        "SOUS_STEP": "load",
    }


def test_log_tail_keeps_the_end_and_masks_secrets_split_across_writes() -> None:
    tail = LogTail(10, Redactor(["secret"]))
    tail.write("0123456789" * 5)
    tail.write("sec")
    tail.write("ret!")
    assert tail.text() == "456789***!"
    assert len(tail.text()) <= 10


def test_exit_errors() -> None:
    assert exit_error(2).model_dump(exclude_none=True) == {
        "kind": "exit_code",
        "message": "exited with code 2",
        "exit_code": 2,
    }
    assert exit_error(-15).signal == 15


def test_redactor_masks_the_password_of_a_url_alone_too() -> None:
    r = Redactor(["postgresql://loader:pa%40ss@db:5432/wh"])
    assert r.text("dsn postgresql://loader:pa%40ss@db:5432/wh") == "dsn ***"
    assert r.text("password pa@ss and pa%40ss") == "password *** and ***"
