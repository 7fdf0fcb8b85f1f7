"""Builds irnet_infer._engine with CMake (Ninja generator), in the way of pybind11's cmake_example:
the extension's output directory is passed to CMake so the .so lands where setuptools expects it."""
import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / ext.name
        build_dir.mkdir(parents=True, exist_ok=True)
        import pybind11  # a build requirement (pyproject.toml)

        config = os.environ.get("IRNET_BUILD_TYPE", "Release")
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}{os.sep}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DCMAKE_BUILD_TYPE={config}",
            "-G", "Ninja",
        ]
        args += [a for a in os.environ.get("IRNET_CMAKE_ARGS", "").split() if a]
        subprocess.run(["cmake", str(ROOT), *args], cwd=build_dir, check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(["cmake", "--build", ".", "--target", "_engine", "-j", jobs], cwd=build_dir, check=True)


setup(
    ext_modules=[CMakeExtension("irnet_infer._engine")],
    cmdclass={"build_ext": CMakeBuild},
)
