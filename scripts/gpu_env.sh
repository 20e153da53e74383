# scripts/gpu_env.sh — sourced by the scripts that run on a GPU machine (gpucheck.sh, gpu_session.sh).
# 1. Puts NCCL and cuBLASLt on the loader path where the machine has them off it: the trainers load NCCL at run time
#    (dlopen "libnccl.so.2", llmc/data_parallel.cuh), and a pip-installed NCCL (nvidia-nccl wheels, e.g. beside
#    PyTorch) lives in site-packages, which the loader does not search; GPU_ENV_NOTE says what was found.
# 2. gpu_data: the crossover's tokenised Wikipedia sample (build/data/wiki_{train,val}) by `make data`, using a
#    carried build/prepare as it is (-o: not rebuilt; the GPU machine may lack zlib's headers, and a copied checkout's
#    sources look newer than the binary).

# gpu_env_find NAME: a directory holding library NAME outside the loader's cache (nothing if the loader finds it).
gpu_env_find() {
    ldconfig -p 2>/dev/null | grep -q "[[:space:]]$1 " && return 0
    local d
    for d in /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib /usr/lib/x86_64-linux-gnu /opt/*/lib /opt/*/lib64 \
             $(python3 -c 'import site, sys; print(" ".join(site.getsitepackages() + [site.getusersitepackages()]))' \
                   2>/dev/null | tr ' ' '\n' | sed 's|$|/nvidia/*/lib|'); do
        [ -e "$d/$1" ] && { echo "$d"; return 0; }
    done
    d=$(timeout 20 find / -xdev -name "$1" -print -quit 2>/dev/null)
    [ -n "$d" ] && dirname "$d"
}

GPU_ENV_NOTE=
for lib in libnccl.so.2 libcublasLt.so.13; do
    dir=$(gpu_env_find "$lib")
    if [ -n "$dir" ]; then
        [[ ":${LD_LIBRARY_PATH:-}:" == *":$dir:"* ]] || export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        GPU_ENV_NOTE+="$lib from $dir; "
    elif ldconfig -p 2>/dev/null | grep -q "[[:space:]]$lib "; then
        GPU_ENV_NOTE+="$lib on the loader path; "
    else
        GPU_ENV_NOTE+="$lib NOT FOUND; "
    fi
done
unset dir lib

gpu_data() {
    if [ -x build/prepare ]; then make -s -o build/prepare data; else make -s data; fi >/dev/null
}
export -f gpu_data
