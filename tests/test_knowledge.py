"""The pretrained knowledge (model/knowledge): YAMNet against its ONNX file, speech heard as speech, the
bridge's links, the face detector on real photos, the semantic map on real photos and recordings."""
import shutil
import subprocess
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model.knowledge import yamnet
from model.knowledge.bridge import ANIMAL_SOUNDS, IMAGENET_CLASSES, PERSON, imagenet_names, load_bridge, visual_evidence
from model.knowledge import bodies
from model.knowledge.bodies import BodyConfig, _letterboxed, detect_people, load_detector
from model.knowledge.faces import detect_faces, face_map
from model.knowledge.scene import SceneReader, same_view, thumbnail
from model.knowledge.semantic import heard, hearing_text, semantic_map
from model.evaluation.quad import CELL, grid, load_spec, photo_cell, quadrant_of, room_noise
from model.synth.real_audio import RECORDING_RATE, load_recording, recording_track

ASSETS = Path(__file__).resolve().parent.parent / "data" / "assets"
STAMPS = ASSETS / "tuxpaint-stamps-default" / "usr/share/tuxpaint/stamps"
needs_assets = pytest.mark.skipif(not STAMPS.is_dir(), reason="data/assets is missing (make assets)")


@pytest.fixture(scope="module")
def utterance(tmp_path_factory) -> np.ndarray:
    """An English sentence spoken by espeak-ng, at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    path = tmp_path_factory.mktemp("speech") / "hello.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "Hello, I am talking to the camera. Can you hear where I am?"],
                   check=True)
    with wave.open(str(path)) as f:
        rate, x = f.getframerate(), np.frombuffer(f.readframes(f.getnframes()), np.int16) / 32768.0
    return yamnet.to_16k(x, rate)


def onnx_runtime_logits(patches: torch.Tensor) -> np.ndarray:
    """The original file run by ONNX Runtime, graph optimisations off (each node as written), as logits."""
    import onnxruntime as ort

    model, arrays = yamnet.read_onnx()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    scale, zero = float(arrays["audio_scale"]), int(arrays["audio_zero_point"])
    quantized = np.clip(np.round(patches.numpy() / scale) + zero, 0, 255).astype(np.uint8)
    out = np.concatenate([session.run(None, {"audio": q[None]})[0] for q in quantized]).astype(np.float32)
    return (out - float(arrays["class_scores_zero_point"])) * float(arrays["class_scores_scale"])


def test_yamnet_in_torch_gives_the_onnx_files_scores(utterance):
    """Emulating the file's 8-bit activations, the torch network gives ONNX Runtime's logits to within a few
    of the output's 8-bit steps (float sums round differently at a few activations, and a step early on
    carries through the layers): the same top class in every patch, most logits within one step."""
    rng = np.random.default_rng(0)
    sounds = [utterance, rng.normal(0, 0.1, 16000 * 2).astype(np.float32)]
    net = yamnet.load_yamnet()
    step = float(yamnet.read_onnx()[1]["class_scores_scale"])
    for sound in sounds:
        patches = yamnet.patches(sound)
        reference = onnx_runtime_logits(patches)
        net.emulate_int8 = True
        try:
            with torch.no_grad():
                mine = net(patches).numpy()
        finally:
            net.emulate_int8 = False
        steps = np.abs(mine - reference) / step
        assert (mine.argmax(1) == reference.argmax(1)).all()
        assert np.median(steps) <= 1.0 and np.quantile(steps, 0.9) <= 4.0 and steps.max() <= 10.0
        with torch.no_grad():  # the float network the app runs agrees on the top class
            assert (net(patches).numpy().argmax(1) == reference.argmax(1)).all()


def test_a_spoken_sentence_is_heard_as_speech(utterance):
    scores = yamnet.sound_scores(utterance)
    assert yamnet.top_labels(scores, 1)[0][0] == "Speech" and float(scores[0]) > 0.8
    assert hearing_text(scores).startswith("speech 0.")


@needs_assets
def test_a_moo_heard_as_a_horn_at_its_own_speed_is_heard_as_cattle_in_one_of_the_window_s_hearings():
    """0ad's recorded cow (a quad-test validation recording): YAMNet names it a vehicle horn as it came, cattle at
    0.85 times its speed; the window's score of each class is its highest over every hearing."""
    item = next(i for i in load_spec().items if i.name == "Holstein cow")
    x = yamnet.to_16k(load_recording(str(load_spec().path(ASSETS, item.sound))), RECORDING_RATE)
    names = yamnet.class_names()
    horn, cattle = names.index("Vehicle horn, car horn, honking"), names.index("Cattle, bovinae")
    hearings = yamnet.hearings(x)
    assert len(hearings) == 2 * len(yamnet.SPEEDS)
    with torch.no_grad():
        each = torch.stack([torch.sigmoid(yamnet.load_yamnet()(yamnet.patches(h))).amax(dim=0) for h in hearings])
    as_it_came = each[yamnet.SPEEDS.index(1.0)]
    assert as_it_came[horn] > 0.5 > as_it_came[cattle]
    scores = yamnet.sound_scores(x)
    torch.testing.assert_close(scores, each.amax(dim=0), atol=1e-5, rtol=0)
    assert yamnet.top_labels(scores, 1)[0][0] == "Cattle, bovinae"


def test_quiet_room_noise_is_not_heard_as_any_linked_sound():
    scores = yamnet.sound_scores(room_noise(np.random.default_rng(0), 16000, 3.0))
    assert float(visual_evidence(scores).max()) < 0.3


def test_the_bridge_links_sounds_to_what_makes_them():
    names, labels = imagenet_names(), yamnet.class_names()
    links = load_bridge().links

    def targets(label):
        row = links[labels.index(label)]
        return {names[i] if i < len(names) else PERSON for i in torch.nonzero(row).flatten().tolist()}

    assert {"Labrador retriever", "beagle", "pug"} <= targets("Bark")
    assert "ox" in targets("Moo") and "hog" in targets("Oink") and "drake" in targets("Quack")
    assert {"lion", "tiger"} <= targets("Roar")
    assert "computer keyboard" in targets("Typing") and "drum" in targets("Drum kit")
    assert {"acoustic guitar", "electric guitar"} <= targets("Guitar")
    assert {"acoustic guitar", "cornet", "grand piano"} <= targets("Music") and PERSON not in targets("Music")
    assert "tabby" in targets("Meow") and "goldfish" not in targets("Meow")
    assert PERSON not in targets("Bark") and "Labrador retriever" not in targets("Speech")


def test_every_human_voice_and_body_sound_goes_to_person():
    labels = yamnet.class_names()
    links = load_bridge().links
    human = labels[:labels.index("Children playing") + 1]  # AudioSet's "Human sounds" branch
    assert human[0] == "Speech" and "Laughter" in human and "Clapping" in human and "Cough" in human
    for i, label in enumerate(human):
        assert links[i, -1] > 0, label
        assert links[i, :-1].sum() == 0, f"{label} links to ImageNet classes"
    weight = {label: float(links[i, -1]) for i, label in enumerate(human)}
    assert weight["Speech"] == weight["Laughter"] == weight["Singing"] == 1.0
    assert weight["Grunt"] < 1.0 and weight["Pant"] < 1.0  # animals grunt and pant too


@needs_assets
def test_the_face_detector_finds_the_person_in_a_real_photo():
    path = load_spec().path(ASSETS, "python-matplotlib-data:grace_hopper.jpg")
    if not path.is_file():
        pytest.skip(f"{path} is missing (make assets)")
    photo = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    faces = detect_faces(photo)
    assert len(faces) >= 1
    x1, y1, x2, y2, p = faces[np.argmax(faces[:, 4])]
    h, w = photo.shape[:2]
    assert p >= 0.96 and 0.25 * w < (x1 + x2) / 2 < 0.75 * w and (y1 + y2) / 2 < 0.6 * h  # her face, up centre
    grid_map = face_map(photo, (14, 14))
    assert grid_map.max() >= 0.96 and grid_map[-3:].max() == 0  # nothing at her shoulders' level
    animal = photo_cell(STAMPS / "animals/mammals/dogs/dog.png")
    assert len(detect_faces(animal)) == 0


def test_the_person_detector_equals_the_tflite_runtime():
    """The detector's file run by our torch graph and by TensorFlow Lite's own runtime, on a real photo."""
    runtime = pytest.importorskip("ai_edge_litert.interpreter")
    path = load_spec().path(ASSETS, "python-matplotlib-data:grace_hopper.jpg")
    if not path.is_file():
        pytest.skip(f"{path} is missing (make assets)")
    pixels, _ = _letterboxed(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), 0, 0)
    with torch.no_grad():
        ours = [o.numpy() for o in load_detector()(torch.from_numpy(pixels[None]))]
    interpreter = runtime.Interpreter(model_path=str(bodies.weights_path()))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels[None])
    interpreter.invoke()
    theirs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    assert sorted(o.shape for o in ours) == sorted(t.shape for t in theirs) == [(1, 2254, 1), (1, 2254, 12)]
    for mine in ours:
        reference = next(t for t in theirs if t.shape == mine.shape)
        assert np.abs(mine - reference).max() <= 1e-3 * max(1.0, np.abs(reference).max())
    probability = torch.sigmoid(torch.from_numpy(ours[1] if ours[1].shape[-1] == 1 else ours[0]))
    assert float(probability.max()) > 0.5  # she is found: the comparison is not of two empty outputs


def photo_among_things(ref: str, quadrant: int) -> np.ndarray:
    """A 2x2 grid: the quad test's photo ``ref`` in ``quadrant``, Tux Paint's dog, guitar and toilet in the others."""
    path = load_spec().path(ASSETS, ref)
    if not path.is_file():
        pytest.skip(f"{path} is missing (make assets)")
    cells = [photo_cell(STAMPS / p) for p in ("animals/mammals/dogs/dog.png",
                                              "hobbies/music/string/guitar_classical.png", "household/toilet.png")]
    cells.insert(quadrant, photo_cell(path))
    picture = grid(cells)
    return picture


def all_in_quadrant(boxes: np.ndarray, quadrant: int) -> bool:
    """Whether every box's centre lies in that quadrant of a grid."""
    return all(2 * ((y1 + y2) / 2 >= CELL) + ((x1 + x2) / 2 >= CELL) == quadrant for x1, y1, x2, y2, _ in boxes)


@needs_assets
@pytest.mark.parametrize("quadrant", [0, 3])
def test_a_person_whose_face_is_not_found_is_found_whole_among_real_photos(utterance, quadrant):
    """KPhotoAlbum's pool players (a validation photo of the quad test): in a 2x2 grid the face detector finds no
    face (one in profile, looking down at the table); the person detector finds the player in that quadrant and
    nowhere else, and the semantic map of speech is highest there. Without the person detector it stays low."""
    picture = photo_among_things("kphotoalbum:pool.jpg", quadrant)
    assert len(detect_faces(picture)) == 0
    people = detect_people(picture)
    assert len(people) >= 1 and people[0, 4] >= 0.9
    assert all_in_quadrant(people, quadrant)
    speech = heard(yamnet.sound_scores(utterance))
    talking = semantic_map(speech, SceneReader().read(picture))
    assert quadrant_of(talking.numpy()) == quadrant and float(talking.max()) >= 0.8
    assert float(semantic_map(speech, SceneReader(bodies=None).read(picture)).max()) < 0.5


@needs_assets
@pytest.mark.parametrize("quadrant", [1, 2])
def test_people_small_in_the_frame_are_found_in_its_corners(quadrant):
    """Ultralytics' bus photo (a validation photo of the quad test) in a 2x2 grid: its people are too small for the
    detector looking at the whole grid; looking at the grid's corners finds one, in that quadrant."""
    picture = photo_among_things("ultralytics:bus.jpg", quadrant)
    assert len(detect_people(picture, BodyConfig(tile_accept=None))) == 0
    people = detect_people(picture)
    assert len(people) >= 1 and people[0, 4] >= 0.95
    assert all_in_quadrant(people, quadrant)


@needs_assets
def test_nobody_is_found_in_real_photos_of_animals_and_things():
    cells = [photo_cell(STAMPS / p) for p in ("animals/mammals/dogs/dog.png", "animals/birds/pigeon.png",
                                              "hobbies/music/string/guitar_classical.png", "household/toilet.png")]
    assert len(detect_people(grid(cells))) == 0
    assert all(len(detect_people(cell)) == 0 for cell in cells)


@needs_assets
@pytest.mark.parametrize("quadrant", [0, 1])
def test_an_animal_s_face_taken_for_a_person_s_is_no_person_but_a_person_s_face_is(utterance, quadrant):
    """A lynx's face (a validation photo of the quad test) beside Grace Hopper in a 2x2 grid: the face detector
    takes it for a person's, the scene does not (ImageNet sees an animal there), and speech is placed on her face."""
    animal, person = (load_spec().path(ASSETS, ref) for ref in ("qabcs-data:pics/animals/lynx.png",
                                                               "python-matplotlib-data:grace_hopper.jpg"))
    if not (animal.is_file() and person.is_file()):
        pytest.skip("the quad test's photos are missing (make assets)")
    cells = [photo_cell(STAMPS / p) for p in ("hobbies/music/string/guitar_classical.png", "household/toilet.png")]
    cells.insert(quadrant, photo_cell(animal))
    cells.insert(3 - quadrant, photo_cell(person))
    picture = grid(cells)
    animal_cells = np.zeros((14, 14), dtype=bool)
    animal_cells[7 * (quadrant // 2):7 * (quadrant // 2 + 1), 7 * (quadrant % 2):7 * (quadrant % 2 + 1)] = True
    assert face_map(picture, (14, 14))[animal_cells].max() >= 0.96  # the detector is fooled
    scene = SceneReader().read(picture)
    assert float(scene.people[torch.from_numpy(animal_cells)].max()) < 0.1
    assert float(scene.people[torch.from_numpy(~animal_cells)].max()) >= 0.96  # her face stays
    talking = semantic_map(heard(yamnet.sound_scores(utterance)), scene)
    assert quadrant_of(talking.numpy()) == 3 - quadrant


@pytest.fixture(scope="module")
def reader():
    return SceneReader()


@needs_assets
@pytest.mark.parametrize("quadrant", [0, 3])
def test_the_semantic_map_finds_the_barking_dog_among_real_photos(reader, quadrant):
    cells = [photo_cell(STAMPS / p) for p in ("hobbies/music/string/guitar_classical.png",
                                              "animals/birds/pigeon.png", "household/toilet.png")]
    cells.insert(quadrant, photo_cell(STAMPS / "animals/mammals/dogs/dog.png"))
    picture = grid(cells)
    scene = reader.read(picture)
    bark = heard(yamnet.sound_scores(recording_track(np.random.default_rng(0),
                                                     str(STAMPS / "animals/mammals/dogs/dog.ogg"), 16000, 3.0)))
    barking = semantic_map(bark, scene)
    assert quadrant_of(barking.numpy()) == quadrant and float(barking.max()) > 0.5
    quiet = heard(yamnet.sound_scores(np.zeros(48000, np.float32)))
    assert float(semantic_map(quiet, scene).max()) < 0.2  # silence lights nothing
    assert same_view(scene, thumbnail(picture)) and not same_view(scene, thumbnail(255 - picture))


@needs_assets
def test_a_knowing_localizer_mixes_the_semantic_map_and_lets_it_decide_presence():
    from dataclasses import replace

    from model.checkpoints.store import load_model
    from model.knowledge.config import SemanticConfig
    from model.localize import Localizer
    from model.networks.presence import NOT_IN_VIEW
    from ssl_desktop.app import BUNDLED_CHECKPOINT

    cells = [photo_cell(STAMPS / p) for p in ("hobbies/music/string/guitar_classical.png", "animals/birds/pigeon.png",
                                              "household/toilet.png")]
    cells.insert(1, photo_cell(STAMPS / "animals/mammals/dogs/dog.png"))
    picture = grid(cells)
    bark = recording_track(np.random.default_rng(0), str(STAMPS / "animals/mammals/dogs/dog.ogg"), 16000, 3.0)
    model = load_model(BUNDLED_CHECKPOINT)
    model.presence = replace(model.presence, threshold=1.0)  # the alignment model alone: never in view
    results = {}
    for name, semantic in (("alignment", SemanticConfig()), ("knowing", SemanticConfig(1.0, 0.25))):
        model.semantic = semantic
        localizer = Localizer(model, "cpu")
        localizer.hear(bark, 1.5)
        results[name] = localizer.localize(picture)
    alone, knowing = results["alignment"], results["knowing"]
    assert alone.presence == NOT_IN_VIEW and alone.semantic is None and alone.hearing == ""
    assert knowing.presence == "" and ("dog" in knowing.hearing or "animal" in knowing.hearing)
    assert quadrant_of(knowing.shown) == 1 and quadrant_of(knowing.semantic) == 1  # weight 1: the semantic map
    np.testing.assert_allclose(knowing.cosine, alone.cosine, atol=1e-5)  # the alignment model's map is unchanged


@needs_assets
def test_quiet_speech_is_no_silence_but_quiet_room_noise_is(utterance):
    """The bundled model, a person among things: speech at -60 dBFS, under the level gate, is named surely by
    YAMNet and shown in view; room noise at the same level stays "silence", and so does the quiet speech when the
    semantic side has no ``known`` level."""
    from dataclasses import replace

    from model.checkpoints.store import load_model
    from model.localize import Localizer
    from model.networks.presence import SILENCE, level_dbfs
    from ssl_desktop.app import BUNDLED_CHECKPOINT

    def at_dbfs(x, dbfs):
        return (x * 10 ** ((dbfs - level_dbfs(x)) / 20)).astype(np.float32)

    picture = photo_among_things("python-matplotlib-data:grace_hopper.jpg", 1)
    model = load_model(BUNDLED_CHECKPOINT)
    quiet_speech = at_dbfs(np.tile(utterance, 2)[:3 * 16000], -60.0)
    quiet_room = at_dbfs(room_noise(np.random.default_rng(0), 16000, 3.0), -60.0)
    assert level_dbfs(quiet_speech) < model.presence.silence_dbfs and model.semantic.known is not None

    def presence(sound, semantic):
        model.semantic = semantic
        localizer = Localizer(model, "cpu")
        localizer.hear(sound, 1.5)
        return localizer.localize(picture)

    speaking = presence(quiet_speech, model.semantic)
    assert speaking.presence == "" and "speech" in speaking.hearing and quadrant_of(speaking.shown) == 1
    assert presence(quiet_room, model.semantic).presence == SILENCE
    assert presence(quiet_speech, replace(model.semantic, known=None)).presence == SILENCE


@needs_assets
def test_a_cat_s_cry_heard_as_a_baby_s_is_no_evidence_of_a_person(utterance):
    """Scratch's meow (a quad-test validation recording): YAMNet hears a cat and a baby crying; the animal explains
    the cry away, so the semantic map does not look for a person. Speech keeps its evidence."""
    names = yamnet.class_names()
    assert (names[ANIMAL_SOUNDS][0], names[ANIMAL_SOUNDS][-1]) == ("Animal", "Whale vocalization")
    meow = load_recording(str(load_spec().path(ASSETS, "scratch:Sounds/Animal/Meow.wav")))
    scores = yamnet.sound_scores(meow, RECORDING_RATE)
    assert scores[names.index("Crying, sobbing")] > 0.5 and scores[names.index("Cat")] > 0.5
    assert float(visual_evidence(scores)[IMAGENET_CLASSES]) > 0.5  # the bridge alone: a person's cry
    cat = heard(scores)
    assert float(cat.evidence[IMAGENET_CLASSES]) < 0.1 and not cat.is_persons
    assert cat.evidence[imagenet_names().index("tabby")] > 0.5
    speech = heard(yamnet.sound_scores(utterance))
    assert float(speech.evidence[IMAGENET_CLASSES]) > 0.9 and speech.is_persons


@needs_assets
def test_an_animal_s_roar_heard_as_a_vehicle_is_no_evidence_of_a_vehicle():
    """0ad's trained elephant (a quad-test validation recording): YAMNet hears a roaring animal and a vehicle; the
    animal explains the vehicle away, so no unicycle or limousine lights up for it, and the animals keep their
    evidence."""
    names, imagenet = yamnet.class_names(), imagenet_names()
    roar = load_recording(str(load_spec().path(ASSETS, "0ad-data:actor/fauna/animal/elephant_trained1.ogg")))
    scores = yamnet.sound_scores(roar, RECORDING_RATE)
    assert scores[names.index("Vehicle")] > 0.5 and scores[ANIMAL_SOUNDS].max() > 0.9
    vehicles = [imagenet.index(name) for name in ("unicycle", "limousine", "shopping cart")]
    assert float(visual_evidence(scores)[vehicles].min()) > 0.5  # the bridge alone: a vehicle
    elephant = heard(scores)
    assert float(elephant.evidence[vehicles].max()) < 0.05
    assert float(elephant.evidence[imagenet.index("lion")]) > 0.9
    assert float(elephant.evidence[imagenet.index("African elephant")]) > 0.3


@needs_assets
def test_a_persons_sound_takes_the_person_weight_and_an_animals_the_weight(utterance):
    from model.checkpoints.store import load_model
    from model.knowledge.config import SemanticConfig
    from model.localize import Localizer
    from ssl_desktop.app import BUNDLED_CHECKPOINT

    person = load_spec().path(ASSETS, "python-matplotlib-data:grace_hopper.jpg")
    if not person.is_file():
        pytest.skip(f"{person} is missing (make assets)")
    cells = [photo_cell(STAMPS / p) for p in ("hobbies/music/string/guitar_classical.png", "household/toilet.png")]
    picture = grid([cells[0], photo_cell(STAMPS / "animals/mammals/dogs/dog.png"), photo_cell(person), cells[1]])
    bark = recording_track(np.random.default_rng(0), str(STAMPS / "animals/mammals/dogs/dog.ogg"), 16000, 3.0)
    speech = utterance[:48000]
    model = load_model(BUNDLED_CHECKPOINT)
    shown = {}
    configs = {"alignment": SemanticConfig(0.0, 0.25), "people": SemanticConfig(0.0, 0.25, person_weight=1.0)}
    for name, semantic in configs.items():
        model.semantic = semantic
        localizer = Localizer(model, "cpu")
        for sound_name, sound in (("speech", speech), ("bark", bark)):
            localizer.hear(sound, 0.0)
            assert localizer.heard.is_persons == (sound_name == "speech")
            shown[name, sound_name] = localizer.localize(picture).shown
    assert quadrant_of(shown["people", "speech"]) == 2  # the person's face: the semantic map alone
    np.testing.assert_allclose(shown["people", "bark"], shown["alignment", "bark"])  # weight 0: the alignment map


@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").is_file(), reason="WordNet isn't installed (wordnet-base)")
def test_the_checked_in_tables_are_what_the_build_script_makes_from_wordnet(tmp_path):
    import runpy

    root = Path(__file__).resolve().parent.parent
    tool = runpy.run_path(str(root / "tools" / "make_bridge.py"))
    assert tool["main"](["--out", str(tmp_path)]) == 0
    for name in ("imagenet_classes.tsv", "bridge.tsv", "person_cues.tsv"):
        assert (tmp_path / name).read_text() == (root / "model" / "knowledge" / name).read_text(), name


def test_the_shown_map_command_scores_every_row_and_presence_on_a_generated_set(tmp_path):
    from model.evaluation.shown_map import ROWS, main as shown_map
    from model.synth.generator import generate

    sample = Path(__file__).resolve().parent / "data" / "real_sample"
    real = {"content": "real", "assets": str(sample), "manifest": str(sample / "manifest.json")}
    annotations = generate(tmp_path / "set", clips=4, seed=5, negatives="silence", **real)
    silent = sum(1 for a in annotations if a.get("negative") == "silence")
    out = tmp_path / "shown.json"
    assert shown_map(["--data", str(tmp_path / "set"), "--json", str(out)]) == 0
    report = __import__("json").loads(out.read_text())
    assert silent >= 1 and report["n"] == len(annotations)
    assert report["n_boxes"] == len(annotations) - silent
    assert set(report["rows"]) == set(ROWS)
    for row in report["rows"].values():
        assert 0 <= row["ciou"] <= 100 and 0 <= row["ciou_adaptive"] <= 100
    assert report["presence"]["in_view_silence"] <= 50.0  # quiet noise is rarely said in view
    assert report["semantic_weight"] > 0  # the bundled model mixes the knowledge in


def test_the_bridge_ranks_the_frame_that_shows_what_is_heard_first():
    from model.evaluation.bridge_retrieval import bridge_similarity

    classes = torch.zeros(3, 1000, 2, 2)
    classes[0, 5, 0, 1] = 0.9  # frame 0 shows class 5 in one place
    classes[1, 7, 1, 0] = 0.8  # frame 1 shows class 7
    people = torch.zeros(3, 2, 2)
    people[2, 1, 1] = 1.0  # frame 2 shows a person
    evidence = torch.zeros(3, 1001)
    evidence[0, 5], evidence[1, 7], evidence[2, -1] = 0.7, 0.6, 0.9
    similarity = bridge_similarity(evidence, classes, people)
    assert similarity.shape == (3, 3)
    assert similarity.argmax(dim=1).tolist() == [0, 1, 2]
    assert similarity[0, 0] == pytest.approx(0.63) and similarity[0, 1] == 0.0


def test_the_bridge_retrieval_command_reports_every_ranking_beside_chance(tmp_path):
    from model.evaluation import metrics
    from model.evaluation.bridge_retrieval import FUSION_WEIGHTS, main as bridge_retrieval
    from model.synth.generator import generate

    sample = Path(__file__).resolve().parent / "data" / "real_sample"
    annotations = generate(tmp_path / "set", clips=4, seed=5, content="real", assets=str(sample),
                           manifest=str(sample / "manifest.json"))
    out = tmp_path / "retrieval.json"
    assert bridge_retrieval(["--data", str(tmp_path / "set"), "--json", str(out)]) == 0
    report = __import__("json").loads(out.read_text())
    labels = [a["class"] for a in annotations]
    assert report["n"] == len(labels)
    assert report["chance"]["1"] == pytest.approx(metrics.retrieval_chance(labels, labels, (1,))[1])
    for direction in ("audio_to_image", "image_to_audio"):
        assert set(report[direction]) == {"embedding", "bridge", *(f"fused {w:g}" for w in FUSION_WEIGHTS)}
        for row in report[direction].values():
            assert 0 <= row["r1"] <= row["r5"] <= 100
            assert row["ci95"]["r1"][0] <= row["r1"] <= row["ci95"]["r1"][1]
    assert bridge_retrieval(["--data", str(tmp_path / "missing")]) == 2
