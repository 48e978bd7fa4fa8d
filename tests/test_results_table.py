"""model.evaluation.results_table: ssl-eval metrics.json files -> the Markdown tables of docs/RESULTS.md."""
import json

from model.evaluation.results_table import main, tables


def metrics(ciou, a2i_r1, two=False):
    m = {"n": 10, "ciou": ciou, "auc": 40.25, "ciou_adaptive": 30.0, "auc_adaptive": 35.0,
         "retrieval": {"audio_to_image": {"r1": a2i_r1, "r5": 70.0, "r10": 90.0},
                       "image_to_audio": {"r1": 20.0, "r5": 60.0, "r10": 80.0}}}
    return {**m, "iiou": 5.0, "iauc": 25.0} if two else m


def write(root, name, m):
    (root / name).mkdir()
    (root / name / "metrics.json").write_text(json.dumps(m))


def test_one_table_per_test_set_one_row_per_run(tmp_path, capsys):
    write(tmp_path, "ezvsl_test_heard", metrics(12.0, 33.333))
    write(tmp_path, "align_test_heard", metrics(20.0, 60.0))
    write(tmp_path, "align_test_two", metrics(8.0, 40.0, two=True))
    text = tables(tmp_path)
    heard, two = text.split("### test_two")
    assert "### test_heard" in heard and "test_unheard" not in text
    rows = [line for line in heard.splitlines() if line.startswith("| align") or line.startswith("| ezvsl")]
    assert rows == ["| align | 10 | 20.0 | 40.2 | 30.0 | 60.0 | 70.0 | 90.0 | 20.0 | 60.0 | 80.0 |",
                    "| ezvsl | 10 | 12.0 | 40.2 | 30.0 | 33.3 | 70.0 | 90.0 | 20.0 | 60.0 | 80.0 |"]
    assert "| iIoU | iAUC |" in two and two.rstrip().endswith("| 5.0 | 25.0 |")
    assert main([str(tmp_path)]) == 0 and capsys.readouterr().out.strip() == text.strip()


def test_mask_and_presence_columns_appear_when_a_run_has_them(tmp_path):
    write(tmp_path, "lite_test_heard", {**metrics(50.0, 40.0), "ciou_mask": 44.4,
                                        "presence": {"auroc_silence": 97.25, "auroc_offscreen": 81.0,
                                                     "in_view": 87.5}})
    write(tmp_path, "scratch_test_heard", metrics(20.0, 10.0))
    text = tables(tmp_path)
    assert "| mask cIoU | presence AUROC silence | presence AUROC off-screen | in view |" in text
    assert "| 44.4 | 97.2 | 81.0 | 87.5 |" in text  # lite
    assert text.splitlines()[-1].endswith("| 80.0 | - | - | - | - |")  # scratch has none of them


def test_object_guided_columns_appear_beside_the_cosine_maps(tmp_path):
    write(tmp_path, "guided_test_heard", {**metrics(30.0, 10.0),
                                          "object_guided": {"weight": 0.4, "ciou": 35.0, "ciou_adaptive": 64.17}})
    write(tmp_path, "plain_test_heard", metrics(30.0, 10.0))
    text = tables(tmp_path)
    assert "| object-guided weight | object-guided cIoU | object-guided cIoU adapt. |" in text
    guided, plain = [line for line in text.splitlines() if line.startswith("| guided") or line.startswith("| plain")]
    assert guided.endswith("| 80.0 | 0.4 | 35.0 | 64.2 |")
    assert plain.endswith("| 80.0 | - | - | - |")
