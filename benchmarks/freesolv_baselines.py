"""FreeSolv baselines on archlab's own split: the bundled physics calculation and RDKit Morgan
fingerprints + scikit-learn (random forest, MLP), several seeds; prints a Markdown table for docs/gnn.md.

    python benchmarks/freesolv_baselines.py                    # random split (split_seed 0), 5 seeds
    python benchmarks/freesolv_baselines.py --split-by scaffold --seeds 5

The split is the one `data.name=freesolv` trains on (`archlab.data.graph.sets.freesolv_rows`), so the
GNN rows of docs/gnn.md and these rows score the same test molecules. The models train on `train`
only (`val` is the GNN's model selection; these baselines use the library defaults below, no tuning).
Fingerprints: Morgan (ECFP4: radius 2, 2,048 bits; Rogers & Hahn 2010). RMSE in kcal/mol.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from archlab.data.graph.sets import freesolv_rows


def fingerprints(smiles) -> np.ndarray:
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return np.stack([gen.GetFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s in smiles]).astype(np.float32)


def rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split-by", choices=("random", "scaffold"), default="random")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=5)
    a = p.parse_args(argv)
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.neural_network import MLPRegressor

    opts = {"split_by": a.split_by, "split_seed": a.split_seed}
    train, test = freesolv_rows("train", **opts), freesolv_rows("test", **opts)
    xtr, xte = fingerprints(train["smiles"]), fingerprints(test["smiles"])
    ytr, yte = train["expt"].to_numpy(), test["expt"].to_numpy()
    print(f"FreeSolv {a.split_by} split (split_seed {a.split_seed}): {len(train)} train / {len(test)} test molecules")
    print("| model | test RMSE (kcal/mol) | seeds | wall time |\n|---|---:|---:|---:|")
    print(f"| physics (`calc` column) | {rmse(test['calc'], yte):.3f} | — | — |")
    print(f"| mean of train targets | {rmse(np.full_like(yte, ytr.mean()), yte):.3f} | — | — |")
    models = {
        "Morgan FP + random forest (500 trees)": lambda s: RandomForestRegressor(500, random_state=s, n_jobs=1),
        "Morgan FP + MLP (512, Adam, early stopping)": lambda s: MLPRegressor(
            hidden_layer_sizes=(512,), alpha=1e-3, early_stopping=True, max_iter=500, random_state=s
        ),
    }
    for name, make in models.items():
        scores, t0 = [], time.perf_counter()
        for s in range(a.seeds):
            scores.append(rmse(make(s).fit(xtr, ytr).predict(xte), yte))
        wall = time.perf_counter() - t0
        print(f"| {name} | {np.mean(scores):.3f} ± {np.std(scores):.3f} | {a.seeds} | {wall:.1f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
