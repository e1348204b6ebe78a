"""The HTTP API in-process (Starlette's TestClient): every endpoint, its results against the commands', every error."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn, python-multipart) is not installed")
from fastapi.testclient import TestClient

from gan_translate.artifacts import training_image_size
from gan_translate.cli import main
from gan_translate.data.io import load_image, save_image
from gan_translate.inference.style import load_adain_stylizer
from gan_translate.inference.translator import load_translator
from gan_translate.serving.app import ServeSettings, create_app
from gan_translate.serving.catalog import load_catalog, parse_model_spec
from gan_translate.serving.uploads import UploadLimits
from gan_translate.style.gatys import GatysConfig
from gan_translate.style.pipeline import build_stylizer
from tests.serving.model_files import (
    adain_checkpoint,
    cyclegan_checkpoint,
    dcgan_checkpoint,
    picture,
    png_bytes,
    png_header_only,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve-models")
    return {"horse2zebra": cyclegan_checkpoint(root / "horse2zebra.ckpt"), "faces": dcgan_checkpoint(root / "faces.ckpt"),
            "styles": adain_checkpoint(root / "styles.ckpt")}


@pytest.fixture(scope="module")
def client(files: dict[str, Path]) -> Iterator[TestClient]:
    models = load_catalog([str(files["horse2zebra"]), f"faces={files['faces']}", str(files["styles"])], device="cpu")
    gatys = build_stylizer(GatysConfig(steps=2), (32,), weights="random")
    settings = ServeSettings(gatys=gatys, gatys_max_steps=5, gatys_max_size=48, max_generate=16,
                             limits=UploadLimits(max_upload_bytes=256 * 1024, max_pixels=512 * 512, min_side=8))
    with TestClient(create_app(models, settings)) as test_client:
        yield test_client


def _decoded(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))


def _translate(client: TestClient, data: bytes, **fields: str):
    return client.post("/v1/translate", files={"image": ("photo.png", data)}, data=fields)


def test_health_readiness_and_the_model_list_from_the_checkpoints(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    listing = client.get("/v1/models").json()
    by_name = {m["name"]: m for m in listing["models"]}
    assert set(by_name) == {"horse2zebra", "faces", "styles"}
    assert by_name["horse2zebra"] | {"training_size": None} == {
        "name": "horse2zebra", "kind": "cyclegan", "capability": "translate", "endpoint": "/v1/translate",
        "directions": ["AtoB", "BtoA"], "training_size": None, "file": "horse2zebra.ckpt"}
    assert by_name["faces"]["kind"] == "dcgan" and by_name["faces"]["capability"] == "sample"
    assert by_name["faces"]["resolution"] == 32 == by_name["faces"]["training_size"]
    assert by_name["styles"]["capability"] == "stylize" and by_name["styles"]["endpoint"] == "/v1/stylize"
    assert listing["gatys"]["available"] and listing["limits"]["max_pixels"] == 512 * 512
    assert "/tmp" not in client.get("/v1/models").text  # no server paths in answers


def test_the_openapi_docs_list_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/models", "/v1/translate", "/v1/stylize", "/v1/generate", "/healthz", "/readyz"} <= set(paths)
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_translate_gives_the_translators_result_at_the_inputs_size(client: TestClient, files: dict[str, Path],
                                                                    direction: str) -> None:
    image = picture(44, 70)
    response = _translate(client, png_bytes(image), direction=direction)
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-image-size"] == "70x44" and response.headers["x-model"] == "horse2zebra"
    assert float(response.headers["x-elapsed-ms"]) > 0
    expected = load_translator(files["horse2zebra"], direction=direction, device="cpu")(image)
    np.testing.assert_array_equal(_decoded(response), expected)


def test_translate_answers_jpeg_when_asked_and_reads_any_accepted_format(client: TestClient) -> None:
    image = picture(40, 48, seed=3)
    response = _translate(client, png_bytes(image, "WEBP"), format="jpeg")
    assert response.headers["content-type"] == "image/jpeg" and _decoded(response).shape == (40, 48, 3)
    # the file name and type a client claims are ignored: these PNG bytes are called a .txt of text/plain
    named_wrong = client.post("/v1/translate", files={"image": ("notes.txt", png_bytes(image), "text/plain")})
    assert _decoded(named_wrong).shape == (40, 48, 3)


def test_generate_gives_the_generate_commands_images_for_a_seed(client: TestClient, files: dict[str, Path],
                                                                tmp_path: Path) -> None:
    assert main(["generate", "--checkpoint", str(files["faces"]), "--num", "4", "--seed", "7",
                 "--output", str(tmp_path / "cli"), "--device", "cpu"]) == 0
    expected = [load_image(tmp_path / "cli" / f"{i:06d}.png") for i in range(4)]
    archive = client.post("/v1/generate", json={"model": "faces", "seed": 7, "count": 4, "layout": "zip"})
    assert archive.headers["content-type"] == "application/zip" and archive.headers["x-seed"] == "7"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as bundle:
        assert bundle.namelist() == [f"{i:06d}.png" for i in range(4)]
        served = [np.asarray(Image.open(io.BytesIO(bundle.read(name))).convert("RGB")) for name in bundle.namelist()]
    for got, want in zip(served, expected):
        np.testing.assert_array_equal(got, want)
    one = _decoded(client.post("/v1/generate", json={"seed": 3}))  # the only sampler: no model field needed
    assert one.shape == (32, 32, 3)
    np.testing.assert_array_equal(one, _decoded(client.post("/v1/generate", json={"seed": 3})))
    assert not np.array_equal(one, _decoded(client.post("/v1/generate", json={"seed": 4})))
    grid = _decoded(client.post("/v1/generate", json={"seed": 7, "count": 4}))
    assert grid.shape == (2 + 2 * 34, 2 + 2 * 34, 3)  # 2 x 2 images of 32 px with 2 px gaps


def test_stylize_with_adain_equals_the_stylizer_and_gatys_keeps_the_content_size(client: TestClient,
                                                                                files: dict[str, Path]) -> None:
    content, style = picture(40, 56, seed=4), picture(64, 64, seed=5)
    upload = {"content": ("c.png", png_bytes(content)), "style": ("s.png", png_bytes(style))}
    adain = client.post("/v1/stylize", files=upload, data={"alpha": "0.5"})
    assert adain.headers["x-model"] == "styles"
    expected = load_adain_stylizer(files["styles"], device="cpu")(content, style, alpha=0.5)
    np.testing.assert_array_equal(_decoded(adain), expected)
    gatys = client.post("/v1/stylize", files=upload, data={"model": "gatys", "steps": "2", "size": "32"})
    assert gatys.headers["x-model"] == "gatys" and _decoded(gatys).shape == (40, 56, 3)
    too_long = client.post("/v1/stylize", files=upload, data={"model": "gatys", "steps": "500"})
    assert too_long.status_code == 422 and "at most 5" in too_long.json()["error"]


def _bad_requests() -> list[tuple[str, dict, int, str]]:
    image = png_bytes(picture(32, 32))
    truncated = image[: len(image) // 2]
    return [
        ("empty body", {"content": b""}, 422, "missing field 'image'"),
        ("empty file", {"files": {"image": ("a.png", b"")}}, 400, "empty"),
        ("non-image bytes", {"files": {"image": ("a.png", b"MZ\x90\x00 this is an executable" * 10)}}, 415, "not a PNG"),
        ("truncated PNG", {"files": {"image": ("a.png", truncated)}}, 400, "truncated"),
        ("1x1 image", {"files": {"image": ("a.png", png_bytes(picture(1, 1)))}}, 422, "1x1"),
        ("30000x30000 header", {"files": {"image": ("a.png", png_header_only(30000, 30000))}}, 413, "limit"),
        ("over the pixel limit", {"files": {"image": ("a.png", png_header_only(1024, 1024))}}, 413, "1024x1024"),
        ("wrong field name", {"files": {"file": ("a.png", image)}}, 422, "missing field 'image'"),
        ("unknown model", {"files": {"image": ("a.png", image)}, "data": {"model": "zebra2horse"}}, 404, "unknown model"),
        ("model of another kind", {"files": {"image": ("a.png", image)}, "data": {"model": "faces"}}, 422, "/v1/generate"),
        ("unknown direction", {"files": {"image": ("a.png", image)}, "data": {"direction": "sideways"}}, 422, "AtoB or BtoA"),
        ("unknown format", {"files": {"image": ("a.png", image)}, "data": {"format": "gif"}}, 422, "format"),
        ("oversize upload", {"files": {"image": ("a.png", b"\x89PNG" + b"\0" * 300_000)}}, 413, "larger than"),
        ("oversize chunked upload", {"content": iter([b"x" * 65536] * 8),
                                     "headers": {"content-type": "multipart/form-data; boundary=b"}}, 413, "larger than"),
        ("not multipart", {"json": {"image": "aGVsbG8="}}, 422, "missing field 'image'"),
    ]


@pytest.mark.parametrize(("case", "request_args", "status", "words"), _bad_requests(), ids=[c[0] for c in _bad_requests()])
def test_every_bad_request_is_a_one_line_4xx_and_the_server_keeps_serving(
    client: TestClient, case: str, request_args: dict, status: int, words: str
) -> None:
    response = client.post("/v1/translate", **request_args)
    assert response.status_code == status, (case, response.text)
    error = response.json()["error"]
    assert words in error and "\n" not in error and len(error) < 300
    assert client.get("/healthz").status_code == 200
    assert _translate(client, png_bytes(picture(16, 16))).status_code == 200


@pytest.mark.parametrize(("path", "body", "status", "words"), [
    ("/v1/generate", {"count": 100}, 422, "at most 16"),
    ("/v1/generate", {"count": 0}, 422, "count"),
    ("/v1/generate", {"seed": "seven"}, 422, "seed"),
    ("/v1/generate", {"model": "horse2zebra"}, 422, "/v1/translate"),
    ("/v1/generate", {"truncation": 0.5}, 422, "needs a StyleGAN2 checkpoint"),
    ("/v1/generate", {"truncation": 5}, 422, "truncation"),
    ("/nowhere", {}, 404, "no such endpoint"),
])
def test_json_endpoints_refuse_bad_fields_in_one_line(client: TestClient, path: str, body: dict, status: int, words: str) -> None:
    response = client.post(path, json=body)
    assert response.status_code == status and words in response.json()["error"]


def test_a_server_without_gatys_says_why_and_a_stylize_needs_both_images(files: dict[str, Path]) -> None:
    models = load_catalog([str(files["horse2zebra"])], device="cpu")
    with TestClient(create_app(models, ServeSettings(gatys_unavailable="no VGG19 weights offline"))) as plain:
        upload = {"content": ("c.png", png_bytes(picture(32, 32))), "style": ("s.png", png_bytes(picture(32, 32)))}
        refused = plain.post("/v1/stylize", files=upload)
        assert refused.status_code == 503 and "no VGG19 weights offline" in refused.json()["error"]
        missing = plain.post("/v1/stylize", files={"content": upload["content"]})
        assert missing.status_code == 422 and "style" in missing.json()["error"]


def test_model_names_come_from_files_or_are_given_and_stay_unique(files: dict[str, Path]) -> None:
    assert parse_model_spec("zebra=/models/a.ckpt") == ("zebra", "/models/a.ckpt")
    assert parse_model_spec("/models/a.ckpt") == (None, "/models/a.ckpt")
    catalog = load_catalog([str(files["horse2zebra"]), str(files["horse2zebra"])], device="cpu")
    assert list(catalog) == ["horse2zebra", "horse2zebra-2"]
    with pytest.raises(Exception, match="already taken"):
        load_catalog([f"a={files['horse2zebra']}", f"a={files['faces']}"], device="cpu")
    with pytest.raises(Exception, match="built-in Gatys"):
        load_catalog([f"gatys={files['styles']}"], device="cpu")


def test_the_training_size_is_read_from_the_datamodule_or_the_generator() -> None:
    assert training_image_size({"datamodule_hyper_parameters": {"transform": {"crop_size": 256, "load_size": 286}}}) == 256
    assert training_image_size({"datamodule_hyper_parameters": {"image_size": 64}}) == 64
    assert training_image_size({"datamodule_hyper_parameters": {"crop_size": 32, "load_size": 32}}) == 32  # 0.1 files
    assert training_image_size({"hyper_parameters": {"resolution": 32}}) == 32
    assert training_image_size({"hyper_parameters": {}}) is None


def test_serve_refuses_bad_flags_and_missing_checkpoints_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--checkpoint", str(tmp_path / "missing.ckpt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["serve", "--checkpoint", "x.ckpt", "--max-batch", "0"]) == 2
    assert "--max-batch must be at least 1" in capsys.readouterr().err
    save_image(picture(8, 8), tmp_path / "image.png")
    assert main(["serve", "--checkpoint", str(tmp_path / "image.png")]) == 2
    assert "not a PyTorch checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "expected"), [("avx512f avx512_bf16", "bf16"), ("avx512f", "fp32")])
def test_serve_runs_translators_at_precision_auto_unless_told(files: dict[str, Path], flags: str, expected: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from gan_translate.commands import serve
    from gan_translate.core import hardware

    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags.split()))
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    for given, precision, reason in (([], expected, "AVX512-BF16"), (["--precision", "fp32"], "fp32", None)):
        options = serve.translator_options_from_args(parser.parse_args(["--checkpoint", "x.ckpt", *given]))
        (served,) = load_catalog([str(files["horse2zebra"])], device="cpu", options=options).values()
        assert {t.precision for t in served.translators.values()} == {precision}
        reasons = {t.precision_reason for t in served.translators.values()}
        assert reasons == {""} if reason is None else all(reason in r for r in reasons)


def test_generate_serves_stylegan2_with_truncation(tmp_path: Path) -> None:
    import torch

    from gan_translate.models.stylegan2 import StyleGAN2
    from tests.serving.model_files import save_model

    torch.manual_seed(0)
    model = StyleGAN2(resolution=32, z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16,
                      num_fixed_samples=4, make_gif=False)
    models = load_catalog([str(save_model(model, tmp_path / "faces.ckpt"))], device="cpu")
    with TestClient(create_app(models)) as served:
        assert served.get("/v1/models").json()["models"][0] == {
            "name": "faces", "kind": "stylegan2", "capability": "sample", "endpoint": "/v1/generate", "directions": [],
            "training_size": 32, "file": "faces.ckpt", "resolution": 32, "latent_dim": 16}
        archive = served.post("/v1/generate", json={"seed": 1, "count": 3, "truncation": 0, "layout": "zip"})
        assert archive.status_code == 200
        with zipfile.ZipFile(io.BytesIO(archive.content)) as bundle:
            images = [bundle.read(name) for name in bundle.namelist()]
        assert len(images) == 3 and images[0] == images[1] == images[2]  # psi 0: the average image for every seed
        varied = served.post("/v1/generate", json={"seed": 1, "count": 2, "layout": "zip"})
        with zipfile.ZipFile(io.BytesIO(varied.content)) as bundle:
            assert len({bundle.read(name) for name in bundle.namelist()}) == 2


def test_translate_serves_unsb_with_optional_steps_and_seed(files: dict[str, Path], tmp_path: Path) -> None:
    from tests.serving.model_files import tiny_checkpoint

    bridge = tiny_checkpoint("unsb", tmp_path / "bridge.ckpt", seed=0)
    models = load_catalog([str(bridge), str(files["horse2zebra"])], device="cpu")
    image = picture(29, 38)
    with TestClient(create_app(models)) as served:
        listed = {m["name"]: m for m in served.get("/v1/models").json()["models"]}
        assert listed["bridge"]["kind"] == "unsb" and listed["bridge"]["settings"] == ["seed", "steps"]
        assert "settings" not in listed["horse2zebra"]
        # no settings: translate's defaults (all steps, seed 0); with them: translate --steps / --seed
        plain = _translate(served, png_bytes(image), model="bridge")
        assert plain.headers["x-image-size"] == "38x29"
        np.testing.assert_array_equal(_decoded(plain), load_translator(bridge, device="cpu")(image))
        tuned = _translate(served, png_bytes(image), model="bridge", steps="1", seed="4")
        assert (tuned.headers["x-steps"], tuned.headers["x-seed"]) == ("1", "4")
        expected = load_translator(bridge, device="cpu", settings={"steps": 1, "seed": 4})(image)
        np.testing.assert_array_equal(_decoded(tuned), expected)
        assert not np.array_equal(_decoded(tuned), _decoded(plain))
        for fields, words in (({"model": "bridge", "steps": "9"}, "steps must be between 1 and the 3 steps"),
                              ({"model": "bridge", "seed": "-1"}, "seed"),
                              ({"model": "horse2zebra", "steps": "2"}, "takes no inference settings")):
            refused = _translate(served, png_bytes(image), **fields)
            assert refused.status_code == 422 and words in refused.text, refused.text
            assert len(refused.json()["error"].splitlines()) == 1
        assert _translate(served, png_bytes(image), model="horse2zebra").status_code == 200  # still serving
