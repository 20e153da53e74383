# scripts/gpu_env.sh — sourced by the scripts that run on a GPU machine (gpucheck.sh, gpu_session.sh).
# 1. Puts NCCL and cuBLASLt on the loader path where the machine has them off it: the trainers load NCCL at run time
#    (dlopen "libnccl.so.2", llmc/data_parallel.cuh), and a pip-installed NCCL (nvidia-nccl wheels, e.g. beside
#    PyTorch) lives in site-packages, which the loader does not search; GPU_ENV_NOTE says what was found.
# 2. gpu_data: the crossover's tokenised Wikipedia sample (build/data/wiki_{train,val}) by `make data`, using a
#    carried build/prepare as it is (-o: not rebuilt; the GPU machine may lack zlib's headers, and a copied checkout's
#    sources look newer than the binary).

# gpu_env_find NAME: "loader" when the loader finds library NAME already, else a directory that holds it, else
# nothing. Never fails (the sourcing scripts may run under set -e). ldconfig's cache is read once: a grep -q on its
# pipe would kill ldconfig with SIGPIPE, which pipefail turns into "not found".
GPU_ENV_LDCACHE=$(ldconfig -p 2>/dev/null || true)
gpu_env_find() {
    local d path=${LD_LIBRARY_PATH:-}
    if [[ "$GPU_ENV_LDCACHE" == *[[:space:]]"$1 "* ]]; then echo loader; return 0; fi
    for d in ${path//:/ }; do
        if [ -e "$d/$1" ]; then echo loader; return 0; fi
    done
    for d in /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib /usr/lib/x86_64-linux-gnu /opt/*/lib /opt/*/lib64 \
             $(timeout 10 python3 -c 'import site; print(" ".join(site.getsitepackages() + [site.getusersitepackages()]))' \
                   2>/dev/null | tr ' ' '\n' | sed 's|$|/nvidia/*/lib|'); do
        if [ -e "$d/$1" ]; then echo "$d"; return 0; fi
    done
    d=$(timeout 10 find / -xdev -name "$1" -print -quit 2>/dev/null || true)
    if [ -n "$d" ]; then dirname "$d"; fi
    return 0
}

GPU_ENV_NOTE=
for lib in libnccl.so.2 libcublasLt.so.13; do
    dir=$(gpu_env_find "$lib")
    case $dir in
        loader) GPU_ENV_NOTE+="$lib on the loader path; " ;;
        "") GPU_ENV_NOTE+="$lib NOT FOUND; " ;;
        *) export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; GPU_ENV_NOTE+="$lib from $dir; " ;;
    esac
done
unset dir lib

gpu_data() {
    if [ -x build/prepare ]; then make -s -o build/prepare data; else make -s data; fi >/dev/null
}
export -f gpu_data
