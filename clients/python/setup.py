"""Generates the protobuf and gRPC modules (with mypy-protobuf type stubs) from the node's
.proto files while the package is built, so the stubs always match the protos of this tree.

The .proto files are found at QUORATE_PROTO_DIR, or at ../../proto/proto from this file.
"""
import os
import pathlib

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent


def proto_dir() -> pathlib.Path:
    given = os.environ.get("QUORATE_PROTO_DIR")
    path = pathlib.Path(given) if given else HERE.parent.parent / "proto" / "proto"
    if not (path / "quorate" / "v1" / "types.proto").is_file():
        raise SystemExit(f"quorate: no .proto files at {path} (set QUORATE_PROTO_DIR)")
    return path


class BuildWithStubs(build_py):
    """build_py, then protoc into the build directory."""

    def run(self) -> None:
        super().run()
        from grpc_tools import protoc  # a build requirement (pyproject.toml)
        import grpc_tools

        root = proto_dir()
        protos = sorted(str(p.relative_to(root)) for p in root.rglob("*.proto"))
        out = pathlib.Path(self.build_lib)
        include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
        rc = protoc.main([
            "protoc", f"-I{root}", f"-I{include}",
            f"--python_out={out}", f"--grpc_python_out={out}",
            f"--mypy_out={out}", f"--mypy_grpc_out={out}",
            *protos,
        ])
        if rc != 0:
            raise SystemExit(f"protoc failed ({rc})")
        # Packages for the generated folders (quorate/v1, quorate/contracts/v1).
        for folder in {(out / p).parent for p in protos}:
            while folder != out / "quorate" and folder != out:
                (folder / "__init__.py").touch()
                folder = folder.parent


setup(cmdclass={"build_py": BuildWithStubs})
