class Bot {}
