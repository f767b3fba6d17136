"""Builds dspy_agent_infra: compiles ../proto into dspy_agent_infra._pb with grpcio-tools
while the package is built (never hand-edited, never committed), and records the
proto files' hash so a test can tell stubs that are older than proto/."""

import hashlib
import re
from importlib import metadata
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PROTO = HERE.parent / "proto"
FILES = ["env_manager/v1/env_manager.proto", "orchestrator/v1/orchestrator.proto"]


def proto_sha256(root: Path = PROTO) -> str:
    h = hashlib.sha256()
    for name in FILES:
        h.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return h.hexdigest()


class BuildWithStubs(build_py):
    def run(self):
        super().run()
        if not all((PROTO / f).is_file() for f in FILES):
            raise SystemExit(f"dspy_agent_infra: {PROTO} does not hold {FILES}; build from the repository's python/")
        from grpc_tools import protoc

        out = Path(self.build_lib) / "dspy_agent_infra" / "_pb"
        out.mkdir(parents=True, exist_ok=True)
        include = Path(protoc.__file__).parent / "_proto"
        args = ["protoc", f"-I{PROTO}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}",
                f"--grpc_python_out={out}", *FILES]
        if protoc.main(args) != 0:
            raise SystemExit("dspy_agent_infra: protoc failed on " + " ".join(FILES))
        # The generated modules import each other as top-level `env_manager.v1`; inside
        # the package they must be relative to dspy_agent_infra._pb.
        for path in out.rglob("*.py*"):
            text = path.read_text()
            fixed = re.sub(r"^from (env_manager|orchestrator)\.v1 import", r"from dspy_agent_infra._pb.\1.v1 import",
                           text, flags=re.M)
            path.write_text(fixed)
        for d in [out, *[p for p in out.rglob("*") if p.is_dir()]]:
            (d / "__init__.py").touch()
        (Path(self.build_lib) / "dspy_agent_infra" / "_proto_hash.py").write_text(
            '"""Generated at build time: the hash of the proto files the stubs were made from."""\n\n'
            f'PROTO_SHA256 = "{proto_sha256()}"\n'
            f'GRPC_TOOLS_VERSION = "{metadata.version("grpcio-tools")}"\n')


def requirements():
    # Generated code checks that the runtime is at least as new as its generator.
    tools = metadata.version("grpcio-tools")
    proto = metadata.version("protobuf")
    return [f"grpcio>={tools}", f"protobuf>={proto}"]


setup(cmdclass={"build_py": BuildWithStubs}, install_requires=requirements())
