#!/usr/bin/env bash
# PyTorch's expandable_segments:True is turned off under paging (issue 18,
# core/torchenv.c): the preloaded library's constructor rewrites the entry
# in PYTORCH_CUDA_ALLOC_CONF / PYTORCH_ALLOC_CONF before the program reads
# it, says so in one line, and leaves everything else as it was. A shell
# stands for the program: it prints the value it was started with.
. "$(dirname "$0")/check-lib.sh"
show() { # VAR [ENV...]: the program's value of VAR; stderr in $dir/err
    local var=$1
    shift
    env "$@" LD_PRELOAD="$pre" sh -c "printf '%s' \"\$$var\"" 2> "$dir/err"
}
expect() { # NAME GOT WANT LINES: the value and the number of vpage's lines
    local lines
    lines=$(grep -c "expandable_segments turned off" "$dir/err")
    [ "$2" = "$3" ] || { echo "$1: got '$2', want '$3'"; cat "$dir/err"; exit 1; }
    [ "$lines" = "$4" ] || { echo "$1: $lines lines about it, want $4"; cat "$dir/err"; exit 1; }
    echo "$1: ok"
}
got=$(show PYTORCH_CUDA_ALLOC_CONF VPAGE_PAGING=stream PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True)
expect stream "$got" expandable_segments:False 1
got=$(show PYTORCH_CUDA_ALLOC_CONF VPAGE_PAGING=stream \
      "PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:128, expandable_segments : true ,garbage_collection_threshold:0.6")
expect others-kept "$got" "max_split_size_mb:128,expandable_segments:False,garbage_collection_threshold:0.6" 1
got=$(show PYTORCH_ALLOC_CONF VPAGE_PAGING=Demand PYTORCH_ALLOC_CONF=expandable_segments:True)
expect demand-new-name "$got" expandable_segments:False 1
got=$(show PYTORCH_CUDA_ALLOC_CONF VPAGE_PAGING=off PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True)
expect paging-off "$got" expandable_segments:True 0
got=$(show PYTORCH_CUDA_ALLOC_CONF PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True)
expect paging-unset "$got" expandable_segments:True 0
got=$(show PYTORCH_CUDA_ALLOC_CONF VPAGE_PAGING=stream PYTORCH_CUDA_ALLOC_CONF=expandable_segments:False)
expect already-off "$got" expandable_segments:False 0
# a child inherits the changed value and says nothing more
got=$(env VPAGE_PAGING=stream PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True LD_PRELOAD="$pre" \
      sh -c 'sh -c "printf %s \"\$PYTORCH_CUDA_ALLOC_CONF\""' 2> "$dir/err")
expect child "$got" expandable_segments:False 1
echo "torchenv: ok"
