"""Building the mean face from an aligned identity folder (the command that made the shipped file)."""

import shutil

import numpy as np

from unmasked.faces.mean_face import load_mean_face
from unmasked.training.mean_face import main


def test_the_build_averages_the_training_identities_closed_mouths_only(shared_data, tmp_path, capsys):
    src = shared_data / "faces" / "celeba_wild256"
    root = tmp_path / "faces"
    for ident in sorted(p.name for p in src.iterdir())[:12]:  # 12 identities, 3 faces each
        (root / ident).mkdir(parents=True)
        for f in sorted((src / ident).iterdir())[:3]:
            shutil.copy(f, root / ident / f.name)
    out, textured_out = tmp_path / "mean.safetensors", tmp_path / "textured.safetensors"
    main(["--images", str(root), "--out", str(out), "--texture-out", str(textured_out),
          "--cache", str(tmp_path / "cache")])
    said = capsys.readouterr().out
    mean = load_mean_face(out)
    total = int(said.split(" of ")[1].split()[0])
    assert 0 < mean.count < total <= 36  # held-out identities and open mouths are left out
    assert f"averaged {mean.count} of {total}" in said
    assert mean.image.shape == (256, 256, 3) and mean.points.shape == (68, 2)
    # a face: the mouth's row (between the inner lips) darker than the cheeks' skin above it
    grey = mean.image.mean(axis=2)
    x, y = np.round(mean.points[60:68].mean(axis=0)).astype(int)
    assert grey[y, x - 3:x + 4].mean() < grey[y - 25:y - 15, x - 3:x + 4].mean() - 10
    # and its texture-enhanced version, of the same faces, has the mouth's line at a higher contrast
    textured = load_mean_face(textured_out)
    assert textured.count == mean.count and f"averaged {mean.count} of {total} training faces (closed mouths, " \
        "texture-enhanced)" in said
    t_grey = textured.image.mean(axis=2)
    assert (t_grey[y - 25:y - 15, x - 3:x + 4].mean() - t_grey[y, x - 3:x + 4].mean()
            > grey[y - 25:y - 15, x - 3:x + 4].mean() - grey[y, x - 3:x + 4].mean())
