# Cross-compiling the C++ kernel tests for 64-bit ARM with Debian's g++-aarch64-linux-gnu;
# .ci/run runs them under qemu-aarch64 to test the NEON path on an x86 machine.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# The cross sysroot, and / for Debian multiarch packages (libssl-dev:arm64 lands in
# /usr/lib/aarch64-linux-gnu; header-only nlohmann-json in /usr/include and /usr/share).
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# pkg-config (which FindOpenSSL asks first) must describe the arm64 packages, not the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
