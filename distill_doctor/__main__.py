from distill_doctor.cli import main

main()
