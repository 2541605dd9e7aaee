"""Scoring: the playbook (`playbook.model.load_playbook`) and the pure engine
(`scoring.engine.score_dataset`, `score_person`, `score_account`) that turns canonical records into
explainable ScoreCards (`scoring.scorecard`)."""
