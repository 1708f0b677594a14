from pigeon_cli.main import app

app(prog_name="pigeon")
