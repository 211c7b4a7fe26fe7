#!/usr/bin/env bash
# Here, before a device check (issue 15, item 4): pack what the GPU machine lacks into .gpudata/
# (ignored by git, named in the device tool's `carry`). That machine has torch, scikit-learn,
# matplotlib, PyYAML, tqdm, threadpoolctl, tensorboard and pytest (device/KINDS.md), but no
# network, none of our datasets (../shared does not travel) and no seqeval (pure Python: its
# package folder is copied). The working tree (tracked files, ~34 MiB, most of it results/)
# and the carried paths travel together under the tool's 64 MiB: FDU-MTL and 20 Newsgroups
# compressed are ~28 MiB, so no GloVe package (the BiLSTM epoch uses trained embeddings).
#
#   bash scripts/gpu_check_prepare.sh [DATA_DIR]      # then, with the device tool:
#   run(command="bash scripts/gpu_check.sh", carry=[".gpudata"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-${TEXTMTL_DATA_DIR:-../shared/data}}"
grep -qx '/.gpudata/' .git/info/exclude 2>/dev/null || echo '/.gpudata/' >> .git/info/exclude
rm -rf .gpudata && mkdir -p .gpudata/site
tar czf .gpudata/data.tgz -C "$data" fdu-mtl 20newsgroups README.md
site=$(.venv/bin/python -c 'import seqeval, os; print(os.path.dirname(os.path.dirname(seqeval.__file__)))')
cp -r "$site/seqeval" .gpudata/site/
du -sh .gpudata
