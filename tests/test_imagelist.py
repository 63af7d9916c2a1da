"""Image list files: what is an image, a comment, a bad line, and a bad file."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import tracemalloc
import types
from pathlib import Path

import pytest

from hangar.errors import HangarError
from hangar.imagelist import MAX_LINE_BYTES, MIRROR_UNSUPPORTED, ListEntry, iter_image_list
from hangar.reference import Reference

HEX = "01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b"


def write(tmp_path: Path, content: str | bytes, name: str = "list.txt") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def entries(path: Path, **kwargs) -> list[ListEntry]:
    return list(iter_image_list(path, **kwargs))


def test_seed_example(tmp_path):
    path = write(tmp_path, "cnrancher/hangar:v1.8.0\ncnrancher/hangar:latest\n")
    assert entries(path) == [
        ListEntry(1, "cnrancher/hangar:v1.8.0",
                  Reference("docker.io", "cnrancher/hangar", "v1.8.0", None), None, None),
        ListEntry(2, "cnrancher/hangar:latest",
                  Reference("docker.io", "cnrancher/hangar", "latest", None), None, None),
    ]  # fmt: skip


def test_comments_blanks_and_white_space(tmp_path):
    path = write(
        tmp_path,
        "# a comment\n"
        "// another comment\n"
        "\n"
        "   \t  \n"
        "  nginx:1.25  \n"
        "\t# indented comment\n"
        "   // indented too\n"
        "quay.io/ns/app\t\n"
        "#nginx\n"
        "//nginx\n",
    )
    result = entries(path)
    assert [(e.line_number, e.text, str(e.reference)) for e in result] == [
        (5, "nginx:1.25", "docker.io/library/nginx:1.25"),
        (8, "quay.io/ns/app", "quay.io/ns/app:latest"),
    ]
    assert all(e.error is None and e.unsupported is None for e in result)


def test_crlf_bom_and_no_final_newline(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfnginx\r\n# c\r\n\r\nquay.io/app:v1")
    result = entries(path)
    assert [(e.line_number, e.text) for e in result] == [(1, "nginx"), (4, "quay.io/app:v1")]
    assert result[0].reference == Reference("docker.io", "library/nginx", "latest", None)


def test_bom_before_a_comment(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbf# list\nnginx\n")
    assert [e.line_number for e in entries(path)] == [2]


def test_mirror_lines_are_unsupported_not_failed(tmp_path):
    path = write(
        tmp_path,
        "nginx\ndocker.io/library/mysql docker.io/username/mirrored-mysql latest\n  a   b\tc  \n",
    )
    result = entries(path)
    assert result[1] == ListEntry(
        2,
        "docker.io/library/mysql docker.io/username/mirrored-mysql latest",
        None,
        None,
        MIRROR_UNSUPPORTED,
    )
    assert result[2].text == "a   b\tc"
    assert result[2].unsupported == MIRROR_UNSUPPORTED
    assert MIRROR_UNSUPPORTED == (
        "mirror list format (SOURCE DEST TAG) is not supported by this command"
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("nginx latest", "white space inside the line"),
        ("a b c d", "white space inside the line"),
        ("Nginx", "repository name must be lowercase"),
        (f"nginx@sha512:{HEX}{HEX}", 'unsupported digest algorithm "sha512"'),
        ("nginx@sha256:abc", "64 lowercase hexadecimal"),
        ("nginx:-x", "invalid tag"),
        ("a//b", "empty path component"),
        ("nginx # inline comment", "white space inside the line"),
    ],
)
def test_bad_lines_are_errors_with_their_line_number(tmp_path, line, reason):
    path = write(tmp_path, f"# header\nnginx\n{line}\nquay.io/app\n")
    result = entries(path)
    assert len(result) == 3
    bad = result[1]
    assert (bad.line_number, bad.text, bad.reference, bad.unsupported) == (3, line, None, None)
    assert reason in bad.error
    assert result[2].reference is not None  # the run goes on after a bad line


def test_error_names_the_reference(tmp_path):
    path = write(tmp_path, "Bad/Image\n")
    [entry] = entries(path)
    assert entry.error == 'invalid image reference "Bad/Image": repository name must be lowercase'


def test_overrides_are_applied(tmp_path):
    path = write(tmp_path, "hxstarrys/slsa-provenance-test:latest\nnginx\nquay.io/app\n")
    result = entries(path, registry="127.0.0.1:5000", project="sign-test")
    assert [str(e.reference) for e in result] == [
        "127.0.0.1:5000/sign-test/slsa-provenance-test:latest",
        "127.0.0.1:5000/sign-test/nginx:latest",
        "127.0.0.1:5000/sign-test/app:latest",
    ]
    assert [str(e.reference) for e in entries(path, registry="127.0.0.1:5000")] == [
        "127.0.0.1:5000/hxstarrys/slsa-provenance-test:latest",
        "127.0.0.1:5000/library/nginx:latest",
        "127.0.0.1:5000/library/app:latest",
    ]
    assert result[0].text == "hxstarrys/slsa-provenance-test:latest"  # as written


def test_bad_override_fails_before_reading(tmp_path):
    missing = tmp_path / "missing.txt"
    with pytest.raises(HangarError, match="--registry"):
        iter_image_list(missing, registry="reg.io/ns")
    with pytest.raises(HangarError, match="--project"):
        iter_image_list(missing, project="Upper")


def test_registry_scheme_is_dropped(tmp_path, capsys):
    path = write(tmp_path, "nginx\n")
    [entry] = entries(path, registry="https://scheme-test.example:5000")
    assert str(entry.reference) == "scheme-test.example:5000/library/nginx:latest"
    assert "URL scheme is ignored" in capsys.readouterr().err


def test_not_utf8_line_after_the_head_is_an_error_entry(tmp_path):
    filler = "# filler\n" * 1200  # > 8 KiB, so the bad byte is past the eager check
    path = write(tmp_path, filler.encode() + b"caf\xe9\nnginx\n")
    result = entries(path)
    assert [e.line_number for e in result] == [1201, 1202]
    assert result[0].error == "line is not valid UTF-8 text"
    assert result[1].reference is not None


def test_long_lines(tmp_path):
    long_comment = "# " + "x" * (MAX_LINE_BYTES * 3)
    long_junk = "y" * (MAX_LINE_BYTES + 1)
    path = write(tmp_path, f"nginx\n{long_comment}\n{long_junk}\nquay.io/app\n{long_junk}")
    result = entries(path)
    assert [(e.line_number, e.error) for e in result] == [
        (1, None),
        (3, f"line is longer than {MAX_LINE_BYTES} bytes"),
        (4, None),
        (5, f"line is longer than {MAX_LINE_BYTES} bytes"),
    ]
    assert len(result[1].text) < 10


def test_line_exactly_at_the_limit_is_parsed(tmp_path):
    name = "a/" + "b" * (MAX_LINE_BYTES - 2)
    path = write(tmp_path, f"{name}\nnginx\n")
    first, second = entries(path)
    assert "255 characters" in first.error  # parsed (and refused), not cut off
    assert second.line_number == 2


# --- file problems ----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(HangarError) as info:
        iter_image_list(tmp_path / "nope.txt")
    assert "nope.txt does not exist" in info.value.message
    assert info.value.hint


def test_directory(tmp_path):
    with pytest.raises(HangarError, match="is a directory"):
        iter_image_list(tmp_path)


def test_empty_file(tmp_path):
    with pytest.raises(HangarError, match=r"contains no images \(the file is empty\)"):
        iter_image_list(write(tmp_path, b""))


def test_only_comments(tmp_path):
    path = write(tmp_path, "# nothing\n\n// here\n   \n")
    with pytest.raises(HangarError, match=r"contains no images \(only blank lines and comments\)"):
        iter_image_list(path)


def test_only_mirror_lines(tmp_path):
    path = write(tmp_path, "# mirror list\na b c\nd e f\n")
    with pytest.raises(HangarError, match="contains no images: its 2 line"):
        iter_image_list(path)


def test_only_bad_lines_still_yields_them(tmp_path):
    # Lines meant as images but wrong are failures to report, not "no images".
    assert [e.error is not None for e in entries(write(tmp_path, "Bad\n"))] == [True]


@pytest.mark.parametrize(
    "content",
    [
        b"nginx\n\x00\x01\x02binary",
        b"\x7fELF\x02\x01\x01\x00\x00\x00",
        b"nginx\n" + bytes(range(128, 256)),
        b"\xff\xfe" + "nginx\n".encode("utf-16-le"),
    ],
)
def test_binary_file(tmp_path, content):
    with pytest.raises(HangarError, match="is not a text image list"):
        iter_image_list(write(tmp_path, content))


def test_utf8_split_at_the_head_boundary_is_fine(tmp_path):
    # A multi-byte character straddling byte 8192 must not be mistaken for bad UTF-8.
    prefix = "# " + "x" * (8192 - 3) + "é\n"
    path = write(tmp_path, prefix + "nginx\n")
    assert [e.text for e in entries(path)] == ["nginx"]


def test_unreadable_file(tmp_path):
    """Root reads a mode-000 file anyway, so as root the check runs in a forked child that has
    dropped to `nobody`; it reports the message through a pipe."""
    directory = Path(tempfile.mkdtemp(prefix="hangar-perm-"))
    path = directory / "list.txt"
    try:
        directory.chmod(0o755)
        path.write_text("nginx\n")
        path.chmod(0o000)
        message = _message_as_nobody(path) if os.geteuid() == 0 else _message(path)
        assert message == f"cannot read image list file {path}: permission denied"
    finally:
        path.unlink(missing_ok=True)
        directory.rmdir()


def _message(path: Path) -> str:
    try:
        iter_image_list(path)
    except HangarError as exc:
        return exc.message
    return "no error"


def _message_as_nobody(path: Path) -> str:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.write(write_end, _message(path).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return message


# --- streaming ---------------------------------------------------------------------------------


def test_returns_a_generator_that_reads_lazily(tmp_path):
    lines = [f"quay.io/ns/app{i}:v{i}" for i in range(100_000)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    stream = iter_image_list(path)
    assert isinstance(stream, types.GeneratorType)
    first = next(stream)
    assert first.text == "quay.io/ns/app0:v0"
    # The end of the file has not been read yet: a line appended now is still seen.
    with path.open("a") as handle:
        handle.write("appended/after:start\n")
    rest = list(stream)
    assert len(rest) == 100_000
    assert rest[-1].text == "appended/after:start"
    assert rest[-1].line_number == 100_001


def test_memory_stays_flat_for_a_large_list(tmp_path):
    lines = [f"registry.example.com/namespace/app-{i}:v1.{i}" for i in range(100_000)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        count = 0
        for entry in iter_image_list(path, registry="127.0.0.1:5000"):
            assert entry.reference is not None
            count += 1
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    assert size > 4_000_000
    assert peak < 1_000_000, f"peak {peak} bytes while reading a {size}-byte list"


def test_pipe_is_read_as_a_stream(tmp_path):
    fifo = tmp_path / "list.fifo"
    os.mkfifo(fifo)

    def feed(content: bytes) -> threading.Thread:
        def run() -> None:
            with fifo.open("wb") as handle:
                handle.write(content)

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    writer = feed(b"# from a pipe\nnginx\nBad\n")
    result = entries(fifo)
    writer.join(timeout=10)
    assert [(e.line_number, e.error is None) for e in result] == [(2, True), (3, False)]

    writer = feed(b"# nothing\n")
    with pytest.raises(HangarError, match="contains no images"):
        entries(fifo)
    writer.join(timeout=10)

    writer = feed(b"\x00\x00binary")
    with pytest.raises(HangarError, match="is not a text image list"):
        entries(fifo)
    writer.join(timeout=10)


def test_text_is_fit_for_the_failed_file(tmp_path):
    """The failed file is built from `text`: fed back, it yields the same references."""
    source = write(tmp_path, "\ufeff  nginx:1.25 \r\n# c\nquay.io/a/b@sha256:" + HEX + "\n")
    first = entries(source)
    failed = write(tmp_path, "\n".join(e.text for e in first) + "\n", "failed.txt")
    again = entries(failed)
    assert [e.reference for e in again] == [e.reference for e in first]
    assert json.dumps([e.text for e in again])  # plain strings


# -- ReadList: the list parsed once for a run -------------------------------------------------


def test_read_list_parses_once_counts_and_streams_back(tmp_path: Path) -> None:
    from hangar.imagelist import ReadList

    path = write(
        tmp_path,
        "# images\nreg.io/a/b:1\nreg.io/a/c:2\nbad ref here x y\nother.io/d/e:3\nBAD:\n",
    )
    read = ReadList(path)
    try:
        path.write_text("reg.io/changed:9\n")  # the run uses what was read, not the file now
        first, second = list(read), list(read)
        assert first == second
        assert [entry.line_number for entry in first] == [2, 3, 4, 5, 6]
        assert read.total == 5
        assert read.registries == {"reg.io": "a/b", "other.io": "d/e"}
        assert [entry.error is not None for entry in first] == [False, False, True, False, True]
    finally:
        read.close()


def test_read_list_of_a_pipe_reads_it_once(tmp_path: Path) -> None:
    from hangar.imagelist import ReadList, open_image_list

    fifo = tmp_path / "list.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "w") as handle:
            handle.write("reg.io/a/b:1\nreg.io/a/b:2\n")

    writer = threading.Thread(target=feed)
    writer.start()
    source = open_image_list(str(fifo))
    writer.join()
    read = ReadList(source, registry="mirror.local:5000")
    try:
        refs = [str(entry.reference) for entry in read]
        assert refs == ["mirror.local:5000/a/b:1", "mirror.local:5000/a/b:2"]
        assert read.registries == {"mirror.local:5000": "a/b"}
    finally:
        read.close()


def test_read_list_raises_file_errors_before_anything_runs(tmp_path: Path) -> None:
    from hangar.imagelist import ReadList

    with pytest.raises(HangarError, match="contains no images"):
        ReadList(write(tmp_path, "# only a comment\n"))
