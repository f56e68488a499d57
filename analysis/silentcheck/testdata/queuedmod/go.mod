module example.com/queuedmod

go 1.24
