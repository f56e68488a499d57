module example.com/logimplmod

go 1.24
