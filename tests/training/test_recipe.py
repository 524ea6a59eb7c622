import pytest

from training.recipe import RecipeError, interleave


def test_interleave_takes_weight_items_per_round():
    gsm = [f"g{i}" for i in range(7)]
    math = ["m0", "m1", "m2"]
    assert interleave([gsm, math], [3, 1]) == ["g0", "g1", "g2", "m0", "g3", "g4", "g5", "m1", "g6", "m2"]


def test_interleave_default_weights_is_round_robin():
    assert interleave([[1, 2], [3], [4, 5, 6]], [1, 1, 1]) == [1, 3, 4, 2, 5, 6]


def test_interleave_refuses_zero_weight():
    with pytest.raises(RecipeError, match="weight"):
        interleave([[1]], [0])


def _recipe(tmp_path, text):
    from training.recipe import load_recipe

    path = tmp_path / "r.toml"
    path.write_text(text)
    return load_recipe(path)


def test_eval_codebase_sets_come_from_held_out_packages(tmp_path):
    from training.recipe import eval_tasks

    recipe = _recipe(
        tmp_path,
        'name = "r"\n[tasks]\ncodebase = [{ root = "typer", n = 2 }]\n'
        '[teacher]\nmodel = "t.gguf"\n[student]\nmodel = "s"\n',
    )
    tasks = eval_tasks(recipe, {"name": "held-out", "codebase": [{"root": "pathspec", "n": 3}]})
    assert len(tasks) == 3
    assert all(t.reference()["source"] == "codebase:pathspec" for t in tasks)
    with pytest.raises(RecipeError, match="'typer' is also a training source"):
        eval_tasks(recipe, {"codebase": [{"root": "typer", "n": 1}]})
    with pytest.raises(RecipeError, match="needs source"):
        eval_tasks(recipe, {"name": "nothing"})


def test_shipped_recipes_share_one_teacher_run():
    from pathlib import Path

    from training.recipe import load_recipe

    recipes = Path(__file__).parents[2] / "training" / "recipes"
    gemma = load_recipe(recipes / "gemma3-270m-agent.toml")
    qwen = load_recipe(recipes / "qwen2.5-coder-0.5b-agent.toml")
    assert qwen.data_file("trajectories.jsonl") == gemma.data_file("trajectories.jsonl")
    assert qwen.data_file("tasks.jsonl") == gemma.file("tasks.jsonl")
    assert qwen.file("sft") != gemma.file("sft")  # each student trains in its own directory
    assert qwen.tasks == gemma.tasks and qwen.teacher == gemma.teacher
    assert qwen.eval["sets"] == gemma.eval["sets"]  # held-out rows of one recipe serve the other


def test_tasks_stage_adds_fix_the_bug_tasks(tmp_path, monkeypatch):
    import json

    from training.recipe import run_recipe

    monkeypatch.setenv("TUI_AGENT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "gsm.jsonl").write_text(
        "".join(json.dumps({"id": i, "question": f"What is {i} + 1?", "answer": i + 1}) + "\n" for i in range(3))
    )
    recipe = _recipe(
        tmp_path,
        'name = "r"\nworkdir = "work"\n[tasks]\nfrom = [{ source = "gsm.jsonl", weight = 2 }]\n'
        'fix_bugs = { n = 2, seed = 3 }\n[teacher]\nmodel = "t.gguf"\n[student]\nmodel = "s"\n',
    )
    run_recipe(recipe, only={"tasks"}, echo=lambda line: None)
    rows = [json.loads(line) for line in (tmp_path / "work" / "tasks.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["number", "number", "fix_bug", "number", "fix_bug"]
    assert all(r["meta"]["files"] for r in rows if r["kind"] == "fix_bug")


def test_tasks_stage_adds_arithmetic_tasks(tmp_path):
    import json

    from training.recipe import run_recipe

    recipe = _recipe(
        tmp_path,
        'name = "r"\nworkdir = "work"\n[tasks]\narithmetic = { n = 5, seed = 4, weight = 2 }\n'
        '[teacher]\nmodel = "t.gguf"\n[student]\nmodel = "s"\n',
    )
    run_recipe(recipe, only={"tasks"}, echo=lambda line: None)
    rows = [json.loads(line) for line in (tmp_path / "work" / "tasks.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and {r["source"] for r in rows} == {"arithmetic"} and {r["kind"] for r in rows} == {"number"}


def _register(name):
    """Register the shipped adapter under ``name``, as the export stage would register a trained one."""
    from training.export import register_model
    from tui_agent.models.registry import load_registry

    register_model(name, "gemma3-270m", load_registry().get("gemma3-270m").lora)


def test_eval_of_an_unregistered_student_says_which_stage_registers_it(tmp_path, monkeypatch):
    import json

    import training.evaluate
    from training.recipe import run_recipe

    (tmp_path / "gsm.jsonl").write_text(json.dumps({"id": 1, "question": "1 + 1?", "answer": 2}) + "\n")
    monkeypatch.setattr(training.evaluate, "evaluate", lambda *args, **kwargs: pytest.fail("nothing may run"))
    recipe = _recipe(
        tmp_path,
        'name = "r"\nworkdir = "work"\n[tasks]\nfrom = [{ source = "gsm.jsonl" }]\n[teacher]\nmodel = "t.gguf"\n'
        '[student]\nmodel = "s"\n[export]\nname = "mine"\n'
        '[eval]\nmodels = ["@student"]\nsets = [{ name = "gsm", source = "gsm.jsonl" }]\n',
    )
    with pytest.raises(RecipeError, match=r"student 'mine' is not in the model registry: .*--only sft,export"):
        run_recipe(recipe, only={"eval"}, echo=lambda line: None)
    (tmp_path / "work" / "sft").mkdir(parents=True)
    with pytest.raises(RecipeError, match=r"--only export` registers it"):
        run_recipe(recipe, only={"eval"}, echo=lambda line: None)


def test_eval_models_can_name_one_sag_row(tmp_path, monkeypatch):
    import json

    import training.evaluate
    from training.recipe import run_recipe

    (tmp_path / "gsm.jsonl").write_text(json.dumps({"id": 1, "question": "1 + 1?", "answer": 2}) + "\n")
    calls = []

    def fake_evaluate(models, tasks, out_dir, **kwargs):
        calls.append([(ref.label, sag) for ref, sag in kwargs["extra"]])
        return {"configs": {}}

    monkeypatch.setattr(training.evaluate, "evaluate", fake_evaluate)
    recipe = _recipe(
        tmp_path,
        'name = "r"\nworkdir = "work"\n[tasks]\nfrom = [{ source = "gsm.jsonl" }]\n[teacher]\nmodel = "t.gguf"\n'
        '[student]\nmodel = "s"\n[export]\nname = "mine"\n'
        '[eval]\nmodels = ["base+none", "@student", { model = "@student", sag = 4 }]\n'
        'sets = [{ name = "gsm", source = "gsm.jsonl" }]\n',
    )
    _register("mine")
    run_recipe(recipe, only={"eval"}, echo=lambda line: None)
    assert calls == [[("base+none", 1), ("mine", 1), ("mine", 4)]]
    written = (tmp_path / "work" / "eval" / "gsm" / "tasks.jsonl").read_text().splitlines()
    assert [json.loads(line)["question"] for line in written] == ["1 + 1?"]  # the set, for `tui-agent eval` runs


def test_eval_rows_run_only_the_chosen_rows_and_report_every_row(tmp_path, monkeypatch):
    import json

    import training.evaluate
    from tests.training.test_evaluate import loader
    from training.recipe import run_recipe

    (tmp_path / "toy.jsonl").write_text(
        "".join(json.dumps({"id": i, "question": f"What is {i} * 2?", "answer": i * 2}) + "\n" for i in (1, 2))
    )
    (tmp_path / "toy2.jsonl").write_text(json.dumps({"id": 7, "question": "What is 7 * 2?", "answer": 14}) + "\n")
    monkeypatch.setattr(training.evaluate, "_load_model", loader)
    recipe = _recipe(
        tmp_path,
        'name = "r"\nworkdir = "work"\n[tasks]\nfrom = [{ source = "toy.jsonl" }]\n[teacher]\nmodel = "t.gguf"\n'
        '[student]\nmodel = "s"\n[eval]\nmodels = ["good", "wrong"]\nmax_steps = 2\n'
        'sets = [{ name = "a", source = "toy.jsonl" }, { name = "b", source = "toy2.jsonl" }]\n',
    )
    with pytest.raises(RecipeError, match=r"no eval row good-sag4 .*its rows: good-sag1, wrong-sag1"):
        run_recipe(recipe, only={"eval"}, rows={"good-sag4"}, echo=lambda line: None)
    with pytest.raises(RecipeError, match="--only eval"):
        run_recipe(recipe, only={"sft"}, rows={"good-sag1"}, echo=lambda line: None)

    run_recipe(recipe, only={"eval"}, rows={"good-sag1"}, echo=lambda line: None)
    for name, size in (("a", 2), ("b", 1)):
        folder = tmp_path / "work" / "eval" / name
        assert (folder / "tasks.jsonl").is_file() and not (folder / "wrong-sag1.jsonl").exists()
        report = json.loads((folder / "report.json").read_text())
        assert report["configs"]["good-sag1"]["tasks"] == size and report["configs"]["good-sag1"]["accuracy"] == 1.0
        assert report["configs"]["wrong-sag1"]["tasks"] == 0  # listed, left for later

    from training.recipe import eval_reports

    report_a = tmp_path / "work" / "eval" / "a" / "report.json"
    report_a.unlink()
    monkeypatch.setattr(training.evaluate, "_load_model", lambda *a: pytest.fail("a report runs no model"))
    reports = dict(eval_reports(recipe))  # rewritten from the trajectories alone, every row listed
    assert list(reports) == ["a", "b"] and json.loads(report_a.read_text())["configs"] == reports["a"]["configs"]
    assert (
        reports["a"]["configs"]["good-sag1"]["accuracy"] == 1.0 and reports["a"]["configs"]["wrong-sag1"]["tasks"] == 0
    )
    monkeypatch.setattr(training.evaluate, "_load_model", loader)

    run_recipe(recipe, only={"eval"}, echo=lambda line: None)  # the rest, later: the finished row is not rerun
    report = json.loads((tmp_path / "work" / "eval" / "a" / "report.json").read_text())
    assert (report["configs"]["wrong-sag1"]["tasks"], report["configs"]["wrong-sag1"]["accuracy"]) == (2, 0.0)
    good = (tmp_path / "work" / "eval" / "a" / "good-sag1.jsonl").read_text().splitlines()
    assert len(good) == 2
